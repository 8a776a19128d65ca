"""Text splitting and clean-up: every word kept, pieces short enough, first piece short for streaming."""

from __future__ import annotations

import itertools
import re

from voxclone.text import FIRST_PIECE_CHARS, MAX_PIECE_CHARS, RAMP_GROWTH, normalise, split


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
    assert split("Dr. Smith met Mr. Jones on Jan. 5th. They talked.", ramp=False) == [
        "Dr. Smith met Mr. Jones on January 5th.",
        "They talked.",
    ]


def test_pieces_start_short_and_grow_so_streams_start_fast_and_never_stall():
    text = (
        "When the morning came over the hills, the travellers packed their bags and set off again, "
        "following the river south until the road turned towards the mountains and the weather changed."
    )
    pieces = split(text)
    assert _words(" ".join(pieces)) == _words(text)
    assert len(pieces[0]) <= FIRST_PIECE_CHARS and len(pieces[0].split()) >= 3
    for before, after in itertools.pairwise(pieces):
        assert len(after) <= RAMP_GROWTH * len(before)
    assert split("Yes, of course, we will all be there on time, I promise you that.")[0] == "Yes, of course,"


def test_the_first_piece_ends_at_the_first_clause_so_it_is_heard_sooner():
    assert split("Hello there, how are you today?") == ["Hello there,", "how are you today?"]
    assert split("Client 4, round 2. The weather is fine.")[:2] == ["Client 4,", "round 2."]
    assert split("Hi, Bob.") == ["Hi, Bob."]  # too short a clause to stand alone: spoken whole


def test_control_characters_and_odd_unicode_are_cleaned():
    assert normalise("Hello\x00 wor\u200bld\x07 \u201cquoted\u201d\u00a0text") == 'Hello world "quoted" text'
    assert split("\x00\x01\x02") == []


def test_times_ratios_degrees_and_units_are_written_as_spoken():
    said = split("Meet me at 3:30 pm, or 10:05, not 17:00. It is 20°C and -3°F, 5 km away, 1 kg, 16:9.", ramp=False)
    assert said == [
        "Meet me at 3 30 PM, or 10 oh 5, not 17 hundred.",
        "It is 20 degrees Celsius and minus 3 degrees Fahrenheit, 5 kilometers away, 1 kilogram, 16 to 9.",
    ]


def test_abbreviated_months_and_streets_are_read_in_full_and_keep_sentence_ends():
    said = split("Main St. is shut until Dec. 25. We live on Baker St. Come to St. Louis.", ramp=False)
    assert said == ["Main Street is shut until December 25.", "We live on Baker Street.", "Come to Saint Louis."]


def test_ranges_phone_numbers_and_iso_dates_are_written_as_spoken():
    said = split(
        "Wait 5-10 minutes, read pages 12–15, pay $5-$10 between 9 - 17. Call +1 555-123-4567 or (555) 123-4567 by 2024-01-15.",
        ramp=False,
    )
    assert said == [
        "Wait 5 to 10 minutes, read pages 12 to 15, pay $5 to $10 between 9 and 17.",
        "Call plus 1, 5 5 5, 1 2 3, 4 5 6 7 or 5 5 5, 1 2 3, 4 5 6 7 by January 15, 2024.",
    ]


def test_things_that_only_look_like_times_units_or_ranges_are_left_alone():
    assert split(
        "Room 25:99 has 3 kmart bags, COVID-19 tests, ISBN 978-3-16-148410-0, v1.2-3 and 2024-13-45.", ramp=False
    ) == ["Room 25 to 99 has 3 kmart bags, COVID-19 tests, ISBN 978-3-16-148410-0, v1.2-3 and 2024-13-45."]
