"""Speech to speech: a real recording said again in a voice, on the recording's clock."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA, TONE, decode_audio, wer

from voxclone.audio import ANALYSIS_RATE, decode
from voxclone.vad import speech_mask

CLIP = SHARED_DATA / "103-1240-0000.flac"  # two sentences with a pause between them, 14 s


@pytest.fixture
def fast_settings(settings):
    return settings.model_copy(update={"transcription_model": "tiny.en"})


def _silences(audio: np.ndarray, rate: int, least_s: float = 0.5) -> list[tuple[float, float]]:
    """Stretches of at least `least_s` where the voice detector hears nobody (inside the clip)."""
    mask = speech_mask(audio, rate, pad_s=0.0)
    runs, start = [], None
    for i, speaking in enumerate(np.append(mask, True)):
        if not speaking and start is None:
            start = i
        elif speaking and start is not None:
            if (i - start) / rate >= least_s and start > 0 and i < mask.size:
                runs.append((start / rate, i / rate))
            start = None
    return runs


def test_revoiced_audio_keeps_the_recording_length_and_its_pauses(fast_settings, make_client):
    client = make_client(fast_settings)
    response = client.post(
        f"/v1/speech-to-speech/{TONE}?output_format=pcm_16000", files={"audio": ("clip.flac", CLIP.read_bytes())}
    )
    assert response.status_code == 200, response.text
    out, rate = decode_audio(response.content, "pcm", 16_000)
    original = decode(CLIP.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=60)
    assert abs(out.size / rate - original.size / ANALYSIS_RATE) < 0.05
    pauses = _silences(original, ANALYSIS_RATE)
    assert pauses, "the clip has a pause between its sentences"
    for start, end in pauses:
        inside = out[int((start + 0.1) * rate) : int((end - 0.1) * rate)]
        assert np.abs(inside).max() < 0.01, f"the voice speaks in the original's pause {start:.2f}-{end:.2f} s"
    assert np.abs(out).max() > 0.1  # and speaks elsewhere


def test_streamed_revoice_and_raw_pcm_input(fast_settings, make_client):
    client = make_client(fast_settings)
    pcm = (decode(CLIP.read_bytes(), target_rate=16_000, max_seconds=60)[: 16_000 * 5] * 32767).astype("<i2").tobytes()
    response = client.post(
        f"/v1/speech-to-speech/{TONE}/stream?output_format=pcm_16000",
        files={"audio": ("clip.pcm", pcm)},
        data={"file_format": "pcm_s16le_16"},
    )
    assert response.status_code == 200 and response.headers["x-voice-id"] == TONE
    assert abs(len(response.content) / 2 / 16_000 - 5.0) < 0.05


@pytest.mark.parametrize(
    ("voice", "body", "status", "message"),
    [
        ("nobody", None, 404, "no voice named"),
        (TONE, b"RIFF nonsense", 422, "could not decode"),
        (TONE, "silence", 422, "no speech"),
    ],
)
def test_bad_requests_get_clear_errors(fast_settings, make_client, voice, body, status, message):
    import io

    import soundfile

    client = make_client(fast_settings)
    if body == "silence":
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(32_000, np.float32), 16_000, format="WAV")
        body = buffer.getvalue()
    response = client.post(f"/v1/speech-to-speech/{voice}", files={"audio": ("a.wav", body or CLIP.read_bytes())})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]["message"]


@pytest.mark.slow
def test_kokoro_revoice_is_intelligible_and_follows_the_words(client, transcribe, tmp_path):
    clip = SHARED_DATA / "1069-133699-0000.flac"  # two long sentences, no names Kokoro would misread
    out_file = tmp_path / "revoiced.wav"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voxclone.cli",
            "revoice",
            "--voice",
            "jm_kumo",
            "--model",
            "tiny.en",
            str(clip),
            str(out_file),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    heard_in = result.stderr.splitlines()[0]  # what Whisper heard in the original
    out = decode(out_file.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=60)
    original = decode(clip.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=60)
    assert abs(out.size - original.size) / ANALYSIS_RATE < 0.05
    assert wer(heard_in, transcribe(out, ANALYSIS_RATE)) <= 0.1
