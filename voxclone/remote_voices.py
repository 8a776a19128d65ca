"""Voices that live upstream (an ElevenLabs account's), kept in the library by a background task.

Every remote engine that lists voices (`RemoteEngine.voices_refresh_s`) is asked for them at start and
then every so often, never per request. Its voices join the library as category `remote`: new ones
are added, renamed or relabelled ones updated, vanished ones removed. An upstream voice that a
voxclone voice already speaks with (one cloned through that engine) is not listed twice. A failed
refresh keeps the last list and says why in the log.
"""

from __future__ import annotations

import asyncio
import logging
import re

from .engines import Engines, RemoteEngine, StockVoice
from .errors import VoiceConflict, VoiceNotFound, VoxcloneError
from .voices import Voice, VoiceLibrary

log = logging.getLogger("voxclone.remote_voices")
CATEGORY = "remote"
_RETRY_S = 30.0  # after a failed refresh, try again sooner than the usual period


def _voice_id(engine: str, upstream_id: str) -> str:
    return f"{engine}-{re.sub(r'[^A-Za-z0-9_-]', '_', upstream_id)}"[:64]


def _name_taken(library: VoiceLibrary, name: str) -> bool:
    try:
        library.get(name)
    except VoiceNotFound:
        return False
    except VoiceConflict:
        return True
    return True


def _create(library: VoiceLibrary, engine: str, stock: StockVoice) -> None:
    """Add an upstream voice under its own name, or with the engine's name after it when that is taken
    (names may repeat in the library, but a voice asked for by name should be the one the user means)."""
    voice_id = _voice_id(engine, str(stock.params["voice_id"]))
    for name in (stock.name, f"{stock.name} ({engine})", voice_id):
        if name != voice_id and _name_taken(library, name):
            continue
        try:
            library.create(
                voice_id=voice_id,
                name=name,
                engine=engine,
                params=dict(stock.params),
                category=CATEGORY,
                labels=stock.labels,
                description=stock.description,
            )
            return
        except VoiceConflict:
            continue
    log.warning("upstream voice %s of %s could not be listed: its id and names are taken", voice_id, engine)


def sync_library(library: VoiceLibrary, engine: str, listed: list[StockVoice]) -> None:
    """Make the library's `remote` voices of `engine` what the upstream lists now. Blocking (SQLite)."""
    mine: list[Voice] = [v for v in library.all() if v.engine == engine]
    claimed = {v.params.get("voice_id") for v in mine if v.category != CATEGORY}
    known = {v.params.get("voice_id"): v for v in mine if v.category == CATEGORY}
    seen = set()
    for stock in listed:
        upstream_id = stock.params["voice_id"]
        if upstream_id in claimed:
            continue
        seen.add(upstream_id)
        voice = known.get(upstream_id)
        if voice is None:
            _create(library, engine, stock)
        elif (voice.labels, voice.description) != (stock.labels, stock.description):
            library.update(voice.id, labels=stock.labels, description=stock.description)
    for upstream_id, voice in known.items():
        if upstream_id not in seen:
            library.delete(voice.id)


class RemoteVoices:
    """Refreshes the library's remote voices, one task for every engine that lists voices."""

    def __init__(self, library: VoiceLibrary, engines: Engines) -> None:
        self.library = library
        self.engines = engines

    def listing(self) -> dict[str, RemoteEngine]:
        return {
            name: engine
            for name, engine in self.engines.items()
            if isinstance(engine, RemoteEngine) and engine.voices_refresh_s and engine.availability().ready
        }

    def claimed(self, voice: Voice) -> None:
        """A voxclone voice now speaks with an upstream voice (a clone made through its engine): that
        voice's `remote` entry goes at once, not at the next refresh. Blocking."""
        upstream_id = voice.params.get("voice_id")
        if voice.engine not in self.listing() or upstream_id is None:
            return
        for other in self.library.all():
            if (
                other.engine == voice.engine
                and other.category == CATEGORY
                and other.params.get("voice_id") == upstream_id
            ):
                self.library.delete(other.id)

    async def refresh(self, name: str) -> None:
        """List `name`'s upstream voices now and bring the library in line; raises what the upstream said."""
        engine = self.listing()[name]
        listed = await engine.remote_voices()
        await asyncio.to_thread(sync_library, self.library, name, listed)

    async def run(self, name: str) -> None:
        """Refresh `name`'s voices until cancelled."""
        period = self.listing()[name].voices_refresh_s or 0.0
        while True:
            try:
                await self.refresh(name)
                wait = period
            except VoxcloneError as e:
                log.warning("the voices of %s could not be refreshed: %s", name, e)
                wait = min(period, _RETRY_S)
            except Exception:  # a bug in one refresh must not end the refreshing for good
                log.exception("refreshing the voices of %s failed", name)
                wait = min(period, _RETRY_S)
            await asyncio.sleep(wait)
