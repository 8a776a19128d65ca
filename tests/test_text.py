"""Text splitting and clean-up: every word kept, pieces short enough, first piece short for streaming."""

from __future__ import annotations

import re

from voxclone.text import MAX_PIECE_CHARS, normalise, split


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def test_every_word_survives_splitting_of_long_text():
    text = " ".join(f"Sentence {i} has a clause, and then another one; it ends here." for i in range(200))
    pieces = split(text)
    assert _words(" ".join(pieces)) == _words(text)
    assert all(len(p) <= MAX_PIECE_CHARS for p in pieces)


def test_a_sentence_without_punctuation_is_cut_at_spaces_not_mid_word():
    text = " ".join(["supercalifragilistic"] * 80)
    pieces = split(text)
    assert len(pieces) > 1
    assert all(set(p.split()) == {"supercalifragilistic"} for p in pieces)


def test_abbreviations_do_not_end_sentences():
    assert split("Dr. Smith met Mr. Jones on Jan. 5th. They talked.", short_first=False) == [
        "Dr. Smith met Mr. Jones on Jan. 5th.",
        "They talked.",
    ]


def test_first_piece_is_a_short_clause_for_fast_first_audio():
    pieces = split("When the morning came over the hills, the travellers packed their bags and set off again.")
    assert pieces[0] == "When the morning came over the hills,"
    assert len(pieces) == 2


def test_control_characters_and_odd_unicode_are_cleaned():
    assert normalise("Hello\x00 wor\u200bld\x07 \u201cquoted\u201d\u00a0text") == 'Hello world "quoted" text'
    assert split("\x00\x01\x02") == []
