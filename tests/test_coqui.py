"""The coqui-tts engines on tiny randomly initialised models (tests/make_coqui_models.py), loaded through
the same code as real weights, speaking through the HTTP API. Their sound is noise: rates, lengths,
streaming order and caching are what is checked here, not quality."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, TONE, decode_audio, metric
from make_coqui_models import openvoice
from make_tone_model import SECONDS_PER_CHAR

SAMPLE = SHARED_DATA / "103-1240-0000.flac"


@pytest.fixture(scope="session")
def coqui_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coqui")
    openvoice(out)
    return out


def _enrol(client, name: str, engine: str) -> dict:
    added = client.post(
        "/v1/voices/add", data={"name": name, "engine": engine}, files=[("files", ("ref.flac", SAMPLE.read_bytes()))]
    )
    assert added.status_code == 200, added.text
    deadline = time.monotonic() + 120
    while (voice := client.get(f"/v1/voices/{added.json()['voice_id']}").json())["status"] == "enrolling":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return voice


def test_openvoice_clone_is_the_base_voice_in_the_speakers_tone_colour(settings, make_client, coqui_models):
    local = settings.model_copy(
        update={"model_paths": {"openvoice_v2": coqui_models / "openvoice_v2"}, "openvoice_base_voice": TONE}
    )
    client = make_client(local)
    voice = _enrol(client, "Owyn (OpenVoice)", "openvoice")
    assert voice["status"] == "ready" and voice["engine"] == "tone", voice  # the base voice's engine, plus a filter
    text = "tone colour"
    converted = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": text})
    base = client.get(f"/speak_as/{TONE}", params={"prompt": text})
    assert converted.status_code == 200, converted.text
    audio, rate = decode_audio(converted.content)
    plain, _ = decode_audio(base.content)
    assert rate == 16_000 and audio.size == plain.size  # the converter keeps the base voice's rate and length
    assert abs(audio.size / rate - len(text) * SECONDS_PER_CHAR) < 0.05
    assert not np.allclose(audio, plain, atol=1e-3)  # but not its sound
    hits = metric(client, "voxclone_cache_hits")
    again = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": text})
    assert again.content == converted.content and metric(client, "voxclone_cache_hits") == hits + 1
    streamed = client.post(
        f"/v1/text-to-speech/{voice['voice_id']}/stream?output_format=pcm_16000", json={"text": "First, then second."}
    )
    assert streamed.status_code == 200
    assert decode_audio(streamed.content, "pcm", 16_000)[0].size / 16_000 > len("First then second") * SECONDS_PER_CHAR


def test_openvoice_without_its_weights_says_which_command_fixes_it(settings, make_client, tmp_path):
    local = settings.model_copy(
        update={"model_paths": {"openvoice_v2": tmp_path / "empty"}, "openvoice_base_voice": TONE}
    )
    voice = _enrol(make_client(local), "No weights", "openvoice")
    assert voice["status"] == "failed" and "voxclone models pull openvoice_v2" in voice["error"]
