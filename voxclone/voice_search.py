"""Finding voices: the filters, sort orders and pages of ElevenLabs' voice search, over the library.

voxclone has one library per server, so ElevenLabs' voice types reduce to two groups: `default`
(the stock voices) and the server's own voices (cloned, or models from disk), which are `personal`,
`non-default`, `non-community` and `saved`. Nothing is `community` or `workspace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .errors import BadInput
from .voices import Voice

_OWN = frozenset({"cloned", "file"})
VOICE_TYPES: dict[str, frozenset[str]] = {
    "default": frozenset({"premade"}),
    "personal": _OWN,
    "non-default": _OWN,
    "non-community": _OWN,
    "saved": _OWN,
    "workspace": frozenset(),
    "community": frozenset(),
}
Sort = Literal["created_at_unix", "name"]


@dataclass(frozen=True)
class VoiceQuery:
    """One search. `labels` must all match (case-insensitive), e.g. {"gender": "female"}."""

    search: str | None = None
    category: str | None = None
    voice_type: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    voice_ids: tuple[str, ...] = ()
    sort: Sort | None = None
    descending: bool | None = None  # None: newest first by date, A-Z by name
    page_size: int = 10
    page_token: str | None = None


@dataclass(frozen=True)
class Page:
    voices: list[Voice]
    total: int
    next_token: str | None


def _matches(voice: Voice, query: VoiceQuery) -> bool:
    if query.voice_ids and voice.id not in query.voice_ids:
        return False
    if query.category and voice.category != query.category:
        return False
    if query.voice_type and voice.category not in VOICE_TYPES[query.voice_type]:
        return False
    if any(voice.labels.get(key, "").lower() != value.lower() for key, value in query.labels.items()):
        return False
    if query.search:
        haystack = " ".join([voice.name, voice.description, voice.category, *voice.labels.values()]).lower()
        return query.search.lower() in haystack
    return True


def _offset(token: str | None) -> int:
    # The token is the offset of the next page: opaque to clients, and stable while the library is.
    if token is None:
        return 0
    if not token.isdigit():
        raise BadInput("next_page_token is not one this server gave; use the one from the previous page")
    return int(token)


def search(voices: Sequence[Voice], query: VoiceQuery) -> Page:
    """The page of `voices` (in library order unless sorted) that `query` asks for."""
    if query.voice_type is not None and query.voice_type not in VOICE_TYPES:
        raise BadInput(f"voice_type must be one of {', '.join(VOICE_TYPES)}")
    found = [v for v in voices if _matches(v, query)]
    if query.sort == "name":
        found.sort(key=lambda v: (v.name.lower(), v.id), reverse=bool(query.descending))
    elif query.sort == "created_at_unix":
        found.sort(key=lambda v: (v.created_at, v.id), reverse=query.descending is not False)
    start = _offset(query.page_token)
    end = start + query.page_size
    return Page(found[start:end], len(found), str(end) if end < len(found) else None)
