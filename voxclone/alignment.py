"""When each character of spoken text is heard, from the words' timings (ElevenLabs' `alignment`).

An engine that knows its timings (the default engine predicts every phoneme's frames; the tone engine is exact)
gives word spans; the characters of a word share its span evenly, and the spaces and punctuation
between two words span the gap between them, so the characters cover the whole audio without holes.
Engines that do not know their timings are aligned by Whisper's word timestamps instead (`force`).

Text is spoken after normalisation ("3:30 pm" is read "three thirty PM"): `normalized_alignment` times
the text as spoken, `alignment` the text as sent, each original character taking the time of what it
became.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .engines import WordTiming

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class CharTimes:
    """Characters and when each is heard (seconds)."""

    characters: tuple[str, ...]
    starts: tuple[float, ...]
    ends: tuple[float, ...]

    @property
    def text(self) -> str:
        return "".join(self.characters)

    def shifted(self, seconds: float) -> CharTimes:
        return CharTimes(
            self.characters, tuple(s + seconds for s in self.starts), tuple(e + seconds for e in self.ends)
        )

    def __add__(self, other: CharTimes) -> CharTimes:
        return CharTimes(self.characters + other.characters, self.starts + other.starts, self.ends + other.ends)

    def as_http(self) -> dict[str, Any]:
        """ElevenLabs' HTTP shape (with-timestamps routes)."""
        return {
            "characters": list(self.characters),
            "character_start_times_seconds": [round(s, 3) for s in self.starts],
            "character_end_times_seconds": [round(e, 3) for e in self.ends],
        }

    def as_websocket(self) -> dict[str, Any]:
        """ElevenLabs' WebSocket shape: milliseconds, start and duration."""
        return {
            "chars": list(self.characters),
            "charStartTimesMs": [round(s * 1000) for s in self.starts],
            "charDurationsMs": [round((e - s) * 1000) for s, e in zip(self.starts, self.ends, strict=True)],
        }


EMPTY = CharTimes((), (), ())


def _locate(text: str, words: Sequence[WordTiming]) -> list[tuple[int, int, WordTiming]]:
    """Each word's character span in `text`, in order; words not found are left out."""
    spans, cursor, lowered = [], 0, text.lower()
    for word in words:
        found = lowered.find(word.word.lower(), cursor)
        if found < 0 or not word.word:
            continue
        spans.append((found, found + len(word.word), word))
        cursor = found + len(word.word)
    return spans


def _spread(count: int, start: float, end: float) -> list[tuple[float, float]]:
    step = max(0.0, end - start) / count if count else 0.0
    return [(start + i * step, start + (i + 1) * step) for i in range(count)]


def char_times(text: str, words: Sequence[WordTiming], duration: float) -> CharTimes:
    """Every character of `text` timed within [0, duration]; without words, spread evenly over it."""
    spans = _locate(text, words)
    if not spans:
        times = _spread(len(text), 0.0, duration)
    else:
        times, position, previous_end = [], 0, 0.0
        for first, last, word in spans:
            start = min(max(word.start, previous_end), duration)
            times += _spread(first - position, previous_end, start)  # the gap before the word
            end = min(max(word.end, start), duration)
            times += _spread(last - first, start, end)
            position, previous_end = last, end
        times += _spread(len(text) - position, previous_end, max(previous_end, duration))
    if times and times[-1][1] < duration:  # the last character lasts through the silence after it
        times[-1] = (times[-1][0], duration)
    return CharTimes(tuple(text), tuple(s for s, _ in times), tuple(e for _, e in times))


def to_original(original: str, spoken: CharTimes) -> CharTimes:
    """Times for `original`, which normalisation turned into `spoken.text`: equal characters keep their
    times; a rewritten span ("3:30" -> "three thirty") shares the time of what it became."""
    if original == spoken.text:
        return spoken
    starts: list[float] = []
    ends: list[float] = []
    last = spoken.ends[-1] if spoken.ends else 0.0
    matcher = difflib.SequenceMatcher(None, original, spoken.text, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            starts += spoken.starts[b0:b1]
            ends += spoken.ends[b0:b1]
            continue
        begin = spoken.starts[b0] if b0 < len(spoken.starts) else last
        finish = spoken.ends[b1 - 1] if b1 > b0 else begin
        for s, e in _spread(a1 - a0, begin, finish):
            starts.append(s)
            ends.append(e)
    return CharTimes(tuple(original), tuple(starts), tuple(ends))


def original_pieces(original: str, pieces: Sequence[str]) -> list[str]:
    """The part of `original` each spoken piece came from; consecutive, together the whole text."""
    spoken = " ".join(pieces)
    mapping = [0] * (len(spoken) + 1)  # spoken index -> original index
    matcher = difflib.SequenceMatcher(None, spoken, original, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        for i in range(a0, a1 + 1):
            mapping[i] = b0 + (i - a0 if op == "equal" else round((i - a0) * (b1 - b0) / max(1, a1 - a0)))
    cuts, position = [0], 0
    for piece in pieces[:-1]:
        position += len(piece) + 1
        cuts.append(min(len(original), max(cuts[-1], mapping[position])))
    cuts.append(len(original))
    return [original[a:b] for a, b in itertools.pairwise(cuts)]


def _key(word: str) -> str:
    return re.sub(r"\W+", "", word.lower())


def force(text: str, heard: Sequence[WordTiming], duration: float) -> tuple[WordTiming, ...]:
    """Word timings for `text` from words a recogniser heard in its audio: matched words take the
    heard times, the others share the time between their matched neighbours."""
    expected = [m.group(0) for m in _WORD.finditer(text)]
    if not expected:
        return ()
    matcher = difflib.SequenceMatcher(None, [_key(w) for w in expected], [_key(w.word) for w in heard], autojunk=False)
    times: list[tuple[float, float] | None] = [None] * len(expected)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            h = heard[block.b + k]
            times[block.a + k] = (h.start, h.end)
    out, index = [], 0
    while index < len(expected):
        if times[index] is not None:
            start, end = times[index]  # type: ignore[misc]
            out.append(WordTiming(expected[index], start, end))
            index += 1
            continue
        gap_end = next((i for i in range(index, len(expected)) if times[i] is not None), len(expected))
        begin = out[-1].end if out else 0.0
        finish = times[gap_end][0] if gap_end < len(expected) else duration  # type: ignore[index]
        for i, (s, e) in zip(range(index, gap_end), _spread(gap_end - index, begin, max(begin, finish)), strict=True):
            out.append(WordTiming(expected[i], s, e))
        index = gap_end
    return tuple(out)
