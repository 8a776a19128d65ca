"""Text before synthesis: clean it up, then split it into pieces an engine can speak one at a time.

Splitting is what makes long input fully spoken (no engine sees more than one sentence, or one
clause of a very long sentence) and what lets streaming start early (the first piece is short).
Number and abbreviation reading is the engines' front ends' job (misaki lexicon for Kokoro, espeak-ng
for Piper); here we only make the text safe and regular.
"""

from __future__ import annotations

import re
import unicodedata

# Longest piece sent to an engine in one call. Kokoro's context is 510 phonemes (~ 250-300 chars);
# 220 characters stays clear of it and keeps each piece's latency low.
MAX_PIECE_CHARS = 220
# The first piece of a stream is cut at the first clause boundary after this many characters, so
# audio can start while the rest of the sentence is still being synthesised.
FIRST_PIECE_MIN_CHARS = 24

_CONTROL = {cat for cat in ("Cc", "Cf", "Cs", "Co", "Cn")}
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9\u00C0-\u024F\u3000-\u9fff])|\n{2,}|(?<=[。！？])")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+|\s+(?=—)")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_ABBREVIATION_END = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|vs|etc|e\.g|i\.e|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|No|Mt|Ft)\.$")


def normalise(text: str) -> str:
    """Unicode-normalise, drop control and invisible characters, regularise quotes and whitespace."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    kept = []
    for char in text:
        if char in "\n\t":
            kept.append(char)
        elif unicodedata.category(char) not in _CONTROL:
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


def _split_first_clause(piece: str) -> list[str]:
    match = None
    for candidate in _CLAUSE_END.finditer(piece):
        if candidate.start() >= FIRST_PIECE_MIN_CHARS:
            match = candidate
            break
    if match is None or len(piece) - match.end() < FIRST_PIECE_MIN_CHARS:
        return [piece]
    return [piece[: match.start()].strip(), piece[match.end() :].strip()]


def split(text: str, *, limit: int = MAX_PIECE_CHARS, short_first: bool = True) -> list[str]:
    """Normalised text as speakable pieces, in order; joined they hold every word of the input.

    With `short_first`, the first sentence is cut at its first clause so the first audio comes sooner.
    """
    pieces = [chunk for sentence in _sentences(normalise(text)) for chunk in _fit(sentence, limit)]
    pieces = [p for p in pieces if any(ch.isalnum() for ch in p)]
    if short_first and pieces:
        pieces[:1] = _split_first_clause(pieces[0])
    return pieces
