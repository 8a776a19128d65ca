"""Deep clone (voxclone.engines.kokoro_deep): the PyTorch Kokoro speaks like the shipped graph, a short fit on a
real clip gets closer to held-out audio, a fit resumes after being killed, failures are reported,
worse voices are refused, and the served voice sounds like the fitted one.

The real clip is LibriSpeech speaker 103 (as in test_cloning_quality.py). Fits start from a stock pack,
standing in for the instant clone (whose search alone takes 90 s), and run a handful of 1 s steps.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("kokoro") is None:
    pytest.skip("the deep clone needs the 'deep' extra (torch, kokoro)", allow_module_level=True)

import torch

from voxclone.cloning import shared_encoder
from voxclone.engines.base import VoiceSpec
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine, assemble_model, stock_packs
from voxclone.engines import kokoro_deep_voice as artefact
from voxclone.engines.kokoro_deep.accept import judge
from voxclone.engines.kokoro_deep.fit import FitOptions
from voxclone.engines.kokoro_deep.job import read_progress, write_job
from voxclone.engines.kokoro_deep.model import HALF, bias_owner, vocab
from voxclone.engines.kokoro_deep.run import fit_voice
from voxclone.engines.kokoro_graph import DURATIONS_TENSOR, F0_TENSOR, split_at_sine_source
from voxclone.errors import BadInput

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech_train-clean-100"
SPEAKER = "103"
SENTENCE = "The old library was quiet, except for the ticking of a clock above the door."
START_PACK = "jf_tebukuro"
SHORT_FIT = {"max_steps": 6, "crop_frames": 40, "validate_every": 3, "checkpoint_every": 3, "patience": 100}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, int]:
    paths = sorted(DATA.glob(f"{SPEAKER}-*.flac"))
    if not paths:
        pytest.skip(f"LibriSpeech clip of speaker {SPEAKER} not found under {DATA}")
    audio, sr = sf.read(paths[0], dtype="float32")
    return audio[: int(6.5 * sr)], sr  # 6.5 s: a short reference keeps alignment and steps cheap


@pytest.fixture(scope="module")
def engine(models_dir: Path) -> KokoroEngine:
    kokoro = KokoroEngine(models_dir, threads=2, runtime="onnxruntime")
    kokoro.load()
    return kokoro


@pytest.fixture(scope="module")
def model(models_dir: Path):  # type: ignore[no-untyped-def]
    from voxclone.engines.kokoro_deep.model import load

    torch.set_num_threads(2)
    return load(assemble_model(models_dir))


@pytest.fixture(scope="module")
def fitted(engine: KokoroEngine, model, reference, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("deep")
    audio, sr = reference
    outcome = fit_voice(
        engine, model, [(audio, sr, None)], stock_packs()[START_PACK], {}, out, FitOptions(**SHORT_FIT), check=False
    )
    return out, outcome


def _ids(engine: KokoroEngine, text: str) -> list[int]:
    table = vocab()
    return [table[c] for chunk in engine.phonemize(text) for c in chunk if c in table]


def test_torch_kokoro_speaks_like_the_shipped_graph(engine: KokoroEngine, model, models_dir: Path) -> None:
    import onnx

    from voxclone.engines.base import onnx_session

    ids = _ids(engine, SENTENCE)
    row = stock_packs()["jm_kumo"][len(ids) - 1]
    split = split_at_sine_source(onnx.load(str(assemble_model(models_dir))))
    before_path = models_dir / "before-test.onnx"
    onnx.save(split.before, str(before_path))
    inputs = {"tokens": np.array([[0, *ids, 0]]), "style": row[None], "speed": np.array([1.0], np.float32)}
    durations, f0_graph = onnx_session(before_path, 2).run([DURATIONS_TENSOR, F0_TENSOR], inputs)
    with torch.no_grad():
        audio, frames = model.synthesize(ids, torch.from_numpy(row.copy()))
        feats = model.text_features(ids, torch.from_numpy(row.copy()))
        f0, _, _ = model.prosody(
            feats, torch.from_numpy(durations.ravel().astype(np.int64)), torch.from_numpy(row.copy())
        )
    assert np.mean(frames.numpy() == durations.ravel()) >= 0.9
    voiced = (f0.numpy().ravel() > 10) & (f0_graph.ravel() > 10)
    assert np.corrcoef(f0.numpy().ravel()[voiced], f0_graph.ravel()[voiced])[0, 1] > 0.99
    graph_audio = engine.infer_ids(ids, row)
    encoder = shared_encoder()
    similarity = float(encoder.embed(audio.numpy(), SAMPLE_RATE) @ encoder.embed(graph_audio, SAMPLE_RATE))
    assert similarity > 0.95
    loudness = float(np.sqrt(np.mean(audio.numpy() ** 2)) / np.sqrt(np.mean(graph_audio**2)))
    assert 0.8 < loudness < 1.25  # the graph's own iSTFT gain, not torch.istft's (3.5 dB quieter)


def test_short_fit_gets_closer_to_held_out_audio_than_the_start(fitted) -> None:  # type: ignore[no-untyped-def]
    out, outcome = fitted
    assert outcome.fit.steps == SHORT_FIT["max_steps"]
    assert outcome.fit.held_out_best < outcome.fit.held_out_start
    voice = artefact.load(out / "deep.npz")
    decoder = [n for n in voice.initializers if n.startswith("decoder.decoder.")]
    assert len(decoder) == 58  # every AdaIN fc bias of the decoder; the rest are the predictor's
    assert np.abs(voice.style[:, HALF:] - stock_packs()[START_PACK][:, HALF:]).max() == 0  # prosody half untouched


def test_served_deep_voice_sounds_like_the_fitted_torch_model(fitted, engine: KokoroEngine, model) -> None:  # type: ignore[no-untyped-def]
    out, _ = fitted
    voice = artefact.load(out / "deep.npz")
    served = engine.synthesize(SENTENCE, VoiceSpec(key="deep-test", params={"deep_file": str(out / "deep.npz")}))
    stock = engine.synthesize_style(SENTENCE, stock_packs()[START_PACK])
    ids = _ids(engine, SENTENCE)
    saved = {}
    with torch.no_grad():
        for name, value in voice.initializers.items():
            saved[name] = bias_owner(model, name).bias.clone()
            bias_owner(model, name).bias.copy_(torch.from_numpy(value))
        try:
            fitted_audio, _ = model.synthesize(ids, torch.from_numpy(voice.style[len(ids) - 1].copy()))
        finally:
            for name, value in saved.items():
                bias_owner(model, name).bias.copy_(value)
    encoder = shared_encoder()
    e_served, e_fitted = encoder.embed(served, SAMPLE_RATE), encoder.embed(fitted_audio.numpy(), SAMPLE_RATE)
    assert float(e_served @ e_fitted) > 0.9
    assert not np.allclose(served[: len(stock)], stock[: len(served)], atol=1e-3)  # the voice's own weights were used


def test_acceptance_refuses_a_voice_further_from_the_speaker(engine: KokoroEngine, reference) -> None:
    audio, sr = reference
    rng = np.random.default_rng(0)
    import soxr

    ref16 = soxr.resample(audio, sr, 16_000)
    instant = lambda text: engine.synthesize_style(text, stock_packs()["jf_alpha"])  # noqa: E731
    worse = lambda text: 0.1 * rng.standard_normal(SAMPLE_RATE * 2).astype(np.float32)  # noqa: E731
    verdict = judge(instant, worse, SAMPLE_RATE, [ref16], 2.0, 1.5, shared_encoder())
    assert not verdict.accepted
    assert verdict.scores["wer_deep"] > verdict.scores["wer_instant"]
    not_fitted = judge(instant, instant, SAMPLE_RATE, [ref16], 2.0, 2.0, shared_encoder())
    assert not not_fitted.accepted and "held-out" in not_fitted.reason


def _run_job(job: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "voxclone.engines.kokoro_deep", str(job)], env=env)


def test_killed_fit_resumes_from_its_checkpoint(reference, models_dir: Path, tmp_path: Path) -> None:
    audio, sr = reference
    job = tmp_path / "job"
    write_job(
        job,
        assemble_model(models_dir),
        [(audio, sr, None)],
        stock_packs()[START_PACK],
        {},
        {**SHORT_FIT, "max_steps": 60, "checkpoint_every": 1},
        threads=1,
    )
    process = _run_job(job)
    try:
        deadline = time.monotonic() + 600
        while not (job / "checkpoint.pt").exists():
            assert process.poll() is None, read_progress(job)
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.5)
    finally:
        process.kill()  # cancelling is killing: the job holds nothing that needs cleaning up
        process.wait(timeout=30)
    assert process.returncode != 0
    killed_at = torch.load(job / "checkpoint.pt", weights_only=False)["step"]
    spec = json.loads((job / "job.json").read_text())
    spec["options"]["max_steps"] = killed_at + 3
    (job / "job.json").write_text(json.dumps(spec))
    resumed = _run_job(job)
    assert resumed.wait(timeout=300) == 0, read_progress(job)
    assert read_progress(job)["state"] == "done"
    result = json.loads((job / "result.json").read_text())
    assert result["fit"]["steps"] == killed_at + 3  # continued, not restarted
    assert set(result["scores"]) >= {"similarity_deep", "similarity_instant", "wer_deep", "wer_instant"}


def test_failed_fit_says_why_and_leaves_no_voice(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.json").write_text(json.dumps({"model": "/nonexistent.onnx", "references": [], "style": "missing.npy"}))
    process = _run_job(job)
    assert process.wait(timeout=120) == 1
    assert read_progress(job)["state"] == "failed"
    assert json.loads((job / "result.json").read_text())["accepted"] is False
    assert not (job / "deep.npz").exists()


def test_unreadable_deep_voice_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "deep.npz"
    bad.write_bytes(b"not a voice")
    with pytest.raises(BadInput):
        artefact.load(bad)
