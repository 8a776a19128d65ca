"""Provenance: every API's speech carries the watermark, through codecs and excerpts; real speech does not.

Quick tests mark real recordings (LibriSpeech, ../shared/data) the way the speech service marks each
piece, and ask the server about them; slow tests speak through every API with Kokoro and Piper.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
from conftest import SHARED_DATA, TONE, decode_audio

from voxclone.audio import OutputFormat, encode
from voxclone.engines import AudioChunk
from voxclone.speech import SpeechRequest

READER = SHARED_DATA / "103-1240-0000.flac"  # 14 s, one reader
UNMARKED = sorted(SHARED_DATA.glob("*.flac"))[:16]
TODAY = time.strftime("%Y-%m-%d", time.gmtime())


def _marked(client, path=READER, voice=TONE) -> tuple[np.ndarray, int]:
    """A real recording with this server's mark for `voice`, made as the speech service marks a piece."""
    audio, rate = soundfile.read(path, dtype="float32")
    return client.app.state.runtime.provenance.mark(AudioChunk(audio, rate, ""), voice).samples, rate


def _detect(client, body: bytes, name: str = "clip.bin") -> dict:
    response = client.post("/v1/watermark/detect", files={"file": (name, body)})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("fmt", "kbps"), [("mp3", 64), ("opus", 24)])
def test_marked_speech_survives_a_lossy_codec_and_names_its_voice_and_day(client, fmt, kbps):
    audio, rate = _marked(client)
    found = _detect(client, encode(audio, rate, OutputFormat(fmt, bitrate=kbps * 1000)))
    assert found["watermarked"] is True and found["confidence"] > 0.999, found
    assert found["made_here"] is True and found["voice_id"] == TONE and found["made_on"] == TODAY


def test_three_seconds_anywhere_in_marked_speech_are_enough(client):
    audio, rate = _marked(client)
    for start in (0.4, 5.3, 10.1):
        excerpt = audio[int(start * rate) : int((start + 3) * rate)]
        assert _detect(client, encode(excerpt, rate, OutputFormat("wav")))["watermarked"] is True, start


def _with_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White noise `snr_db` under the audio's mean power (a busy room at 20 dB, a street at 10 dB)."""
    noise = np.random.default_rng(seed).standard_normal(audio.size).astype(np.float32)
    return audio + noise * np.sqrt(np.mean(audio**2) / 10 ** (snr_db / 10))


def test_marked_speech_under_white_noise_at_20_db_snr_is_found_and_mostly_names_its_voice(client):
    named = []
    for seed, path in enumerate(UNMARKED[:8]):
        audio, rate = _marked(client, path)
        found = _detect(client, encode(_with_noise(audio, 20.0, seed), rate, OutputFormat("wav")))
        assert found["watermarked"] is True and found["voice_id"] in (TONE, None), (path.name, found)
        named.append(found["voice_id"] == TONE)
    # Each installation's message is its own (a random id), so which clips are named varies from run to
    # run: a voice is named from 65 % of noisy clips in bench/watermark.py, and never a wrong one.
    assert sum(named) >= 5, named


def test_unmarked_real_speech_is_not_detected_clean_or_under_noise(client):
    for seed, path in enumerate(UNMARKED):
        audio, rate = soundfile.read(path, dtype="float32")
        for body in (path.read_bytes(), encode(_with_noise(audio, 20.0, seed), rate, OutputFormat("wav"))):
            found = _detect(client, body, path.name)
            assert found["watermarked"] is False and found["voice_id"] is None, (path.name, found)
            assert found["score"] < found["threshold"]


def test_a_mark_from_another_installation_is_detected_but_not_claimed(client, make_client, settings):
    other = make_client(settings.model_copy(update={"data_dir": settings.data_dir.parent / "elsewhere"}))
    audio, rate = _marked(other)
    found = _detect(client, encode(audio, rate, OutputFormat("flac")))
    assert found["watermarked"] is True and found["made_here"] is False and found["voice_id"] is None


def test_detect_refuses_what_is_not_audio(client):
    response = client.post("/v1/watermark/detect", files={"file": ("notes.txt", b"not audio at all")})
    assert response.status_code == 422 and "decode" in response.json()["detail"]["message"]
    assert client.post("/v1/watermark/detect").status_code == 422


def test_every_piece_the_service_makes_is_marked_and_cached_marked(runtime, make_runtime, settings):
    """Speech service output differs from the unmarked engine output by a mark well below the speech
    (the tone engine is too sparse to detect; slow tests detect real engines' speech)."""
    request = SpeechRequest(text="Marked once, when made.", voice=TONE)
    marked = asyncio.run(runtime.speech.audio(request))
    again = asyncio.run(runtime.speech.audio(request))  # from the piece cache
    plain_runtime = make_runtime(
        settings.model_copy(update={"watermark": False, "data_dir": settings.data_dir.parent / "plain"})
    )
    plain = asyncio.run(plain_runtime.speech.audio(request))
    assert np.allclose(marked.samples, again.samples, atol=1e-4)  # the cache keeps 16-bit samples
    difference = marked.samples - plain.samples
    assert np.abs(difference).max() > 1e-3
    assert 10 * np.log10(np.sum(plain.samples**2) / np.sum(difference**2)) > 15


def test_detect_cli_prints_each_file(tmp_path, client, settings):
    audio, rate = _marked(client)
    marked = tmp_path / "marked.wav"
    soundfile.write(marked, audio, rate)
    env = {
        **os.environ,
        "VOXCLONE_DATA_DIR": str(settings.data_dir),
        "VOXCLONE_EXTRA_VOICE_PATHS": str(settings.extra_voice_paths[0]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "voxclone.cli", "detect", str(marked), str(READER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert "marked.wav: watermarked" in first and TONE in first and TODAY in first
    assert "not watermarked" in second
    as_json = subprocess.run(
        [sys.executable, "-m", "voxclone.cli", "detect", "--json", str(marked)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert json.loads(as_json.stdout)["voice_id"] == TONE
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF nonsense")
    failed = subprocess.run(
        [sys.executable, "-m", "voxclone.cli", "detect", str(broken)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failed.returncode == 1 and "decode" in failed.stderr and "Traceback" not in failed.stderr


# Every API, real engines -----------------------------------------------------------------------------

SENTENCES = (
    "The ferry leaves the harbour at seven, so we should pack our bags tonight and sleep early. "
    "Please remember to water the tomatoes before the weekend, or they will not survive the heat."
)


def _round_trips(client, audio: np.ndarray, rate: int) -> list[dict]:
    return [
        _detect(client, encode(audio, rate, OutputFormat(fmt, bitrate=kbps * 1000)))
        for fmt, kbps in (("mp3", 64), ("opus", 24))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["jm_kumo", "joe"])
def test_every_api_speaks_marked_audio_that_survives_mp3_and_opus(client, voice):
    responses = {
        "speak_as": client.get(f"/speak_as/{voice}", params={"prompt": SENTENCES}),
        "openai": client.post("/v1/audio/speech", json={"input": SENTENCES, "voice": voice, "response_format": "flac"}),
        "openai_stream": client.post(
            "/v1/audio/speech", json={"input": SENTENCES, "voice": voice, "response_format": "opus", "stream": True}
        ),
        "elevenlabs": client.post(f"/v1/text-to-speech/{voice}?output_format=mp3_44100_128", json={"text": SENTENCES}),
        "elevenlabs_stream": client.post(
            f"/v1/text-to-speech/{voice}/stream?output_format=pcm_24000", json={"text": SENTENCES}
        ),
    }
    missed = []
    for api, response in responses.items():
        assert response.status_code == 200, (api, response.text)
        audio, rate = decode_audio(response.content, "pcm" if api == "elevenlabs_stream" else None, 24_000)
        for found in _round_trips(client, audio, rate):
            if not found["watermarked"]:
                missed.append((api, found))
            assert found["voice_id"] in (voice, None), (api, found)
    # Ten round trips per voice. The mark is specified at >= 99 % per transformation (bench/watermark.py:
    # opus at 24 kbps measures 99.5 %, its misses 3-4 s clips), and a stream's short first pieces are
    # marked one by one, so one opus miss in ten is within that; two are not.
    assert len(missed) <= 1, missed


@pytest.mark.slow
def test_websocket_session_audio_is_marked(client):
    chunks = []
    with client.websocket_connect("/v1/text-to-speech/jm_kumo/stream-input?output_format=pcm_24000") as socket:
        socket.send_text(json.dumps({"text": " "}))
        socket.send_text(json.dumps({"text": SENTENCES}))
        socket.send_text(json.dumps({"text": ""}))
        while True:
            message = json.loads(socket.receive_text())
            if message.get("audio"):
                chunks.append(base64.b64decode(message["audio"]))
            if message.get("isFinal"):
                break
    audio = np.frombuffer(b"".join(chunks), "<i2").astype(np.float32) / 32768
    assert all(found["watermarked"] for found in _round_trips(client, audio, 24_000))


@pytest.mark.slow
def test_a_three_second_excerpt_of_a_stream_is_detected(client):
    text = SENTENCES + " Children ran across the field chasing a bright red kite, and nobody called them home."
    response = client.post("/v1/text-to-speech/jm_kumo/stream?output_format=mp3_44100_64", json={"text": text})
    audio, rate = decode_audio(response.content)
    assert audio.size / rate > 9
    for start in (1.0, audio.size / rate / 2, audio.size / rate - 4):
        excerpt = audio[int(start * rate) : int((start + 3) * rate)]
        wav = io.BytesIO()
        soundfile.write(wav, excerpt, rate, format="WAV")
        assert _detect(client, wav.getvalue())["watermarked"] is True, start
