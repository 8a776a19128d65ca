"""The default voice is intelligible: Whisper tiny.en word error rate <= 0.10 over 10 varied sentences."""

from __future__ import annotations

import pytest
from conftest import decode_audio, wer

# Varied on purpose: questions, numbers, names, long and short, clauses, contractions.
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Could you please send me the report before Friday afternoon?",
    "We're meeting at the old train station, near the river.",
    "She bought three apples, two oranges and a loaf of bread.",
    "Thank you for calling; your order will arrive tomorrow morning.",
    "The museum opens at nine and closes at five in the evening.",
    "I can't believe how quickly the summer went by this year!",
    "A gentle breeze carried the smell of fresh coffee down the street.",
    "Turn left at the second traffic light and keep going straight.",
    "My brother learned to play the piano when he was seven.",
]


@pytest.mark.slow
def test_default_voice_word_error_rate_is_at_most_ten_percent(client, transcribe):
    errors = []
    for sentence in SENTENCES:
        response = client.post(
            "/v1/audio/speech", json={"input": sentence, "voice": "jm_kumo", "response_format": "wav"}
        )
        assert response.status_code == 200
        audio, rate = decode_audio(response.content)
        errors.append(wer(sentence, transcribe(audio, rate)))
    mean = sum(errors) / len(errors)
    assert mean <= 0.10, f"per-sentence WER {errors}"


@pytest.mark.slow
def test_clock_times_and_temperatures_are_spoken_not_dropped(client, transcribe):
    # The G2P alone says nothing for "3:30" and "20°C"; voxclone.reading writes them out.
    response = client.post(
        "/v1/audio/speech",
        json={"input": "The bus leaves at 3:30 pm when it is 20°C.", "voice": "jm_kumo", "response_format": "wav"},
    )
    assert response.status_code == 200
    heard = transcribe(*decode_audio(response.content)).lower()
    assert "3:30" in heard or "3.30" in heard or "three thirty" in heard, heard
    assert "degrees" in heard and "celsius" in heard, heard


@pytest.mark.slow
def test_money_and_page_ranges_are_spoken_not_dropped(client, transcribe):
    # The G2P alone says nothing at all for "$5-$10" and "12–15"; voxclone.reading reads them with "to".
    response = client.post(
        "/v1/audio/speech",
        json={"input": "Tickets cost $5-$10, see pages 12–15.", "voice": "jm_kumo", "response_format": "wav"},
    )
    assert response.status_code == 200
    heard = transcribe(*decode_audio(response.content)).lower()
    assert ("10" in heard or "ten" in heard) and ("15" in heard or "fifteen" in heard), heard
