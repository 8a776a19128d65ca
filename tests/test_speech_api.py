"""Speech through every HTTP API and format: decoded audio has the right rate and length, and is speech."""

from __future__ import annotations

import pytest
from conftest import TONE, decode_audio, wer
from make_tone_model import SECONDS_PER_CHAR

SENTENCE = "Please call Stella and ask her to bring these things."


def tone_seconds(text: str, speed: float = 1.0) -> float:
    """How long the tone voice speaks `text` (one tone per character, spaces included)."""
    return len(text) * SECONDS_PER_CHAR / speed


def test_speak_as_wav_has_the_voice_s_own_rate_and_every_character(client):
    response = client.get(f"/speak_as/{TONE}", params={"prompt": "Hello there"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    audio, rate = decode_audio(response.content)
    assert rate == 16_000  # the tone model's rate, not a rate fixed per engine
    assert audio.size / rate == pytest.approx(tone_seconds("Hello there"), abs=0.01)


def test_speak_as_accepts_the_original_typed_parameters(client):
    response = client.get(
        f"/speak_as/{TONE}", params={"prompt": "Hello.", "speed": "1.0", "text_temp": "0.7", "waveform_temp": 0.7}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [
        ("mp3", "audio/mpeg", 16_000),
        ("opus", "audio/ogg", 48_000),
        ("aac", "audio/aac", 16_000),
        ("flac", "audio/flac", 16_000),
        ("wav", "audio/wav", 16_000),
        ("pcm", "audio/pcm", 24_000),
    ],
)
def test_openai_speech_every_format_decodes_to_the_same_length(client, fmt, content_type, rate):
    text = "Good morning, everyone."
    response = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": text, "voice": TONE, "response_format": fmt}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    audio, got_rate = decode_audio(response.content, fmt, rate)
    assert got_rate == rate
    assert audio.size / got_rate == pytest.approx(tone_seconds(text), abs=0.12)  # codec padding only
    assert audio.std() > 0.01  # not silence


@pytest.mark.parametrize(
    ("output_format", "fmt", "rate"),
    [
        ("mp3_44100_128", "mp3", 44_100),
        ("pcm_16000", "pcm", 16_000),
        ("pcm_22050", "pcm", 22_050),
        ("pcm_24000", "pcm", 24_000),
        ("pcm_44100", "pcm", 44_100),
        ("ulaw_8000", "ulaw", 8_000),
        ("opus_48000_64", "opus", 48_000),
    ],
)
def test_elevenlabs_output_formats(client, output_format, fmt, rate):
    text = "Good morning, everyone."
    response = client.post(
        f"/v1/text-to-speech/{TONE}?output_format={output_format}",
        json={"text": text, "model_id": "eleven_multilingual_v2"},
    )
    assert response.status_code == 200, response.text
    audio, got_rate = decode_audio(response.content, fmt, rate)
    assert got_rate == rate
    assert audio.size / rate == pytest.approx(tone_seconds(text), abs=0.12)
    assert audio.std() > 0.01


def test_elevenlabs_speed_setting_changes_duration(client):
    def seconds(speed: float) -> float:
        response = client.post(
            f"/v1/text-to-speech/{TONE}?output_format=pcm_16000",
            json={"text": SENTENCE, "voice_settings": {"speed": speed, "stability": 0.5}},
        )
        assert response.status_code == 200
        return len(response.content) / 2 / 16_000

    assert seconds(2.0) == pytest.approx(seconds(1.0) / 2, rel=0.02)


def test_long_text_is_fully_spoken(client):
    ending = "Finally, the purple elephant sang a lullaby."
    sentences: list[str] = []
    topics = ["weather", "garden", "river", "market", "mountain", "library"]
    while len(" ".join(sentences)) < 5000 - 150:
        sentences.append(
            f"This is sentence number {len(sentences) + 1}, about the {topics[len(sentences) % 6]} for a while."
        )
    text = " ".join([*sentences, ending])
    assert 4800 < len(text) <= 5000
    response = client.post(f"/v1/text-to-speech/{TONE}?output_format=pcm_16000", json={"text": text})
    assert response.status_code == 200, response.text
    spoken = len(response.content) / 2 / 16_000
    # every character but the spaces between sentences is spoken, plus a pause after each sentence
    characters = tone_seconds(text) - len(sentences) * SECONDS_PER_CHAR
    assert characters < spoken < characters + 0.3 * (len(sentences) + 1)


@pytest.mark.slow
def test_speak_as_wav_is_intelligible_speech(client, transcribe):
    response = client.get("/speak_as/jm_kumo", params={"prompt": SENTENCE})
    assert response.status_code == 200
    audio, rate = decode_audio(response.content)
    assert rate == 24_000
    assert 2.0 < audio.size / rate < 6.0
    assert wer(SENTENCE, transcribe(audio, rate)) <= 0.15


@pytest.mark.slow
def test_openai_speech_defaults_to_mp3_and_maps_openai_voice_names(client):
    response = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi there.", "voice": "alloy"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["x-voice-id"] == "jf_alpha"


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["jm_kumo", "joe"])
def test_speed_range_works_on_every_engine(client, voice):
    durations = {}
    for speed in (0.25, 1.0, 4.0):
        response = client.get(f"/speak_as/{voice}", params={"prompt": "One two three four five.", "speed": speed})
        assert response.status_code == 200
        audio, rate = decode_audio(response.content)
        durations[speed] = audio.size / rate
    assert durations[0.25] > 2 * durations[1.0] > 2 * 2 * durations[4.0] * 0.5
    assert durations[4.0] < durations[1.0] < durations[0.25]


@pytest.mark.slow
def test_piper_voice_joe_is_intelligible(client, transcribe):
    sentences = [
        "The weather is lovely today, so we are going to the beach.",
        "My brother learned to play the piano when he was seven.",
    ]
    errors = []
    for sentence in sentences:
        response = client.post("/v1/audio/speech", json={"input": sentence, "voice": "joe", "response_format": "wav"})
        assert response.status_code == 200
        audio, rate = decode_audio(response.content)
        assert rate == 22_050
        errors.append(wer(sentence, transcribe(audio, rate)))
    assert sum(errors) / len(errors) <= 0.15, errors
