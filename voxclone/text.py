"""Text before synthesis: clean it up, then split it into pieces an engine can speak one at a time.

Splitting is what makes long input fully spoken (no engine sees more than one sentence, or one
clause of a very long sentence) and what lets streaming start early (the first piece is short).
Number and abbreviation reading is mostly the engines' front ends' job; here we make the text safe
and regular and write out the few forms they misread (voxclone.reading).
"""

from __future__ import annotations

import re
import unicodedata

from .reading import read_aloud

# Longest piece sent to an engine in one call, unless the engine says otherwise (its capabilities):
# the default engine's context is 510 phonemes (~ 250-300 chars); 220 characters stays clear of it
# and keeps each piece's latency low.
MAX_PIECE_CHARS = 220
# The first pieces grow in size: the first is a few words, so audio starts quickly, and each next
# piece is at most RAMP_GROWTH times longer, so it is synthesised (at a real-time factor of ~0.4)
# before the previous one has finished playing. That keeps a stream from stalling once it starts.
FIRST_PIECE_CHARS = 22
# The first piece ends at the first clause break past this many characters when there is one ("Yes,
# of course," / "Client 4,"): an engine call costs more the more it says, so the shorter
# first piece is heard sooner, and a clause is a whole phrase, so its prosody stays natural. With four
# clients starting at once the last hears its first words after four first pieces: p95 3.1 s when
# "Client 4, round 2." was spoken whole, 2.2 s cut at its comma (bench/latency.py, 2 cores).
FIRST_CLAUSE_MIN_CHARS = 6
RAMP_GROWTH = 3

_CONTROL = {cat for cat in ("Cc", "Cf", "Cs", "Co", "Cn")}
_SENTENCE_END = re.compile(
    r"(?<=[.!?…。！？])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9\u00C0-\u024F\u3000-\u9fff])|\n{2,}|(?<=[。！？])"
)
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+|\s+(?=—)")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_LEADING_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "nor",
        "so",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "onto",
        "than",
        "that",
        "as",
        "if",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "these",
        "those",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "it",
        "not",
        "no",
    ]
)
_ABBREVIATION_END = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|vs|etc|e\.g|i\.e|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|No|Mt|Ft)\.$"
)


def is_abbreviation(word: str) -> bool:
    """Whether a word ending in a full stop is an abbreviation ("Mrs.", "Dr.", "e.g."), not a sentence end."""
    return bool(_ABBREVIATION_END.search(word.strip()))


def normalise(text: str) -> str:
    """Unicode-normalise, drop control and invisible characters, regularise quotes and whitespace."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    kept = []
    for char in text:
        if char in "\n\t" or unicodedata.category(char) not in _CONTROL:
            kept.append(char)
    text = "".join(kept)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return text.strip()


def _sentences(text: str) -> list[str]:
    pieces: list[str] = []
    for part in _SENTENCE_END.split(text):
        part = part.strip()
        if not part:
            continue
        # "Dr. Smith" is not two sentences: glue a piece that ended on an abbreviation to the next.
        if pieces and _ABBREVIATION_END.search(pieces[-1]):
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    return pieces


def _fit(piece: str, limit: int) -> list[str]:
    """Cut a piece longer than `limit` at clause boundaries, then at spaces, never mid-word."""
    if len(piece) <= limit:
        return [piece]
    out: list[str] = []
    current = ""
    for clause in _CLAUSE_END.split(piece):
        for word in clause.split(" ") if len(clause) > limit else [clause]:
            if current and len(current) + 1 + len(word) > limit:
                out.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if len(current) >= limit // 2:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return [chunk[i : i + limit] for chunk in out for i in range(0, len(chunk), limit)]


def _cut(piece: str, limit: int) -> tuple[str, str]:
    """Cut before `limit` characters: at a clause boundary in its second half, else at the last space."""
    clauses = [m for m in _CLAUSE_END.finditer(piece) if limit // 2 <= m.start() <= limit]
    if clauses:
        return piece[: clauses[-1].start()].strip(), piece[clauses[-1].end() :].strip()
    space = piece.rfind(" ", 0, limit + 1)
    if space <= 0:
        return piece, ""
    head = piece[:space]
    # Never end a piece on a word that leads into the next ("and", "the", "to"...): the pause at a
    # piece boundary would then fall inside a phrase. Cut before it instead.
    while " " in head and head.rsplit(" ", 1)[1].lower() in _LEADING_WORDS:
        head = head.rsplit(" ", 1)[0]
    return head.strip(), piece[len(head) :].strip()


def _ramp(pieces: list[str]) -> list[str]:
    out: list[str] = []
    rest = list(pieces)
    limit = FIRST_PIECE_CHARS
    while rest and limit < MAX_PIECE_CHARS:
        head = rest.pop(0)
        first_clause = (
            None
            if out
            else next((m for m in _CLAUSE_END.finditer(head) if FIRST_CLAUSE_MIN_CHARS <= m.start() <= limit), None)
        )
        if first_clause:
            head, tail = head[: first_clause.start()].strip(), head[first_clause.end() :].strip()
            rest.insert(0, tail)
        elif len(head) > limit:
            head, tail = _cut(head, limit)
            if tail:
                rest.insert(0, tail)
        out.append(head)
        limit = RAMP_GROWTH * len(head)
    return out + rest


def split(text: str, *, limit: int = MAX_PIECE_CHARS, ramp: bool = True) -> list[str]:
    """Normalised text as speakable pieces, in order; joined they hold every word of the input.

    With `ramp`, the first pieces are short and grow (see RAMP_GROWTH) so streamed audio starts soon
    and never runs dry.
    """
    pieces = [chunk for sentence in _sentences(read_aloud(normalise(text))) for chunk in _fit(sentence, limit)]
    pieces = [p for p in pieces if any(ch.isalnum() for ch in p)]
    return _ramp(pieces) if ramp else pieces


# Speak up to the last clause or sentence boundary once this much text is waiting.
_MIN_CLAUSE_CHARS = 12
_BOUNDARY = re.compile(r"[.!?…;:,—](?=\s)")


def take_speakable(buffer: str, *, flush: bool) -> tuple[str, str]:
    """Split text arriving over time (an LLM writing) into (text to speak now: up to the last clause or
    sentence boundary, once there is enough of it; text to keep waiting for more)."""
    if flush:
        return buffer.strip(), ""
    ends = [m.end() for m in _BOUNDARY.finditer(buffer)]
    if not ends or ends[-1] < _MIN_CLAUSE_CHARS:
        return "", buffer
    return buffer[: ends[-1]].strip(), buffer[ends[-1] :]
