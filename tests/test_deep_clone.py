"""Deep clone (voxclone.engines.kokoro_deep) on a real clip: the PyTorch Kokoro speaks like the shipped graph,
a short fit gets closer to held-out audio than the voice it starts from, the served voice sounds like the
fitted one, worse voices are refused, a killed fit resumes from its checkpoint, failures say why, and
through the server the voice speaks with its instant clone while the fit runs in its own process.

The real clip is LibriSpeech speaker 103 (as in test_cloning_quality.py), cut to 6.5 s; fits run a handful
of 1 s steps. The quick API flow (progress, cancel, restart, refusal) is tests/test_refining.py's.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import decode_audio

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("kokoro") is None:
    pytest.skip("the deep clone needs the 'deep' extra (torch, kokoro)", allow_module_level=True)

import torch

from voxclone.cloning import Cloners
from voxclone.cloning.prepare import prepare
from voxclone.engines import SpeakOptions, VoiceSpec
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine, stock_packs
from voxclone.engines.kokoro_adapted import load as load_deep_voice
from voxclone.engines.kokoro_clone import InstantCloner
from voxclone.engines.kokoro_deep.accept import judge
from voxclone.engines.kokoro_deep.cloner import DeepCloner
from voxclone.engines.kokoro_deep.fit import FitOptions
from voxclone.engines.kokoro_deep.job import read_progress, write_job
from voxclone.engines.kokoro_deep.model import HALF, bias_owner
from voxclone.engines.kokoro_deep.run import fit_voice, phoneme_ids
from voxclone.engines.kokoro_graph import DURATIONS_TENSOR, F0_TENSOR, split_at_sine_source
from voxclone.errors import BadInput
from voxclone.onnx_sessions import onnx_session
from voxclone.runtime import Parts
from voxclone.samples import store

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
    """onnxruntime: the runtime whose served deep voice matches the fit closest (OpenVINO's bf16 generator differs)."""
    kokoro = KokoroEngine(models_dir, threads=2, runtime="onnxruntime")
    kokoro.load()
    return kokoro


@pytest.fixture(scope="module")
def model(engine: KokoroEngine):  # type: ignore[no-untyped-def]
    from voxclone.engines.kokoro_deep.model import load

    torch.set_num_threads(2)
    return load(engine.model_file())


@pytest.fixture(scope="module")
def fitted(engine: KokoroEngine, model, reference, listeners, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A short fit in this process, from a stock pack (standing in for an instant clone), not yet judged."""
    out = tmp_path_factory.mktemp("deep")
    audio, sr = reference
    outcome = fit_voice(
        engine,
        model,
        [(audio, sr, None)],
        stock_packs()[START_PACK],
        [],
        out,
        listeners.encoder,
        listeners.transcriber,
        FitOptions(**SHORT_FIT),
        check=False,
    )
    return out, outcome


def _speak(engine: KokoroEngine, text: str, spec: VoiceSpec) -> np.ndarray:
    return np.concatenate([c.samples for c in engine.synthesize(text, spec, SpeakOptions())])


def test_torch_kokoro_speaks_like_the_shipped_graph(engine: KokoroEngine, model, listeners, tmp_path: Path) -> None:
    import onnx

    ids = phoneme_ids(engine, SENTENCE)
    row = stock_packs()["jm_kumo"][len(ids) - 1]
    split = split_at_sine_source(onnx.load(str(engine.model_file())))
    before_path = tmp_path / "before.onnx"
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
    encoder = listeners.encoder
    assert float(encoder.embed(audio.numpy(), SAMPLE_RATE) @ encoder.embed(graph_audio, SAMPLE_RATE)) > 0.95
    loudness = float(np.sqrt(np.mean(audio.numpy() ** 2)) / np.sqrt(np.mean(graph_audio**2)))
    assert 0.8 < loudness < 1.25  # the graph's own iSTFT gain, not torch.istft's (3.5 dB quieter)


def test_a_short_fit_gets_closer_to_held_out_audio_than_the_voice_it_starts_from(fitted) -> None:  # type: ignore[no-untyped-def]
    out, outcome = fitted
    assert outcome.fit.steps == SHORT_FIT["max_steps"]
    assert outcome.fit.held_out_best < outcome.fit.held_out_start  # log-STFT/mel distance on the unseen 15 %
    voice = load_deep_voice(out / "deep.npz")
    assert len(voice.initializers) == 58  # every AdaIN fc bias of the decoder
    assert all(name.startswith("decoder.decoder.") for name in voice.initializers)
    assert np.abs(voice.style[:, HALF:] - stock_packs()[START_PACK][:, HALF:]).max() == 0  # prosody half untouched


def test_the_served_deep_voice_sounds_like_the_fitted_torch_model(
    fitted, engine: KokoroEngine, model, listeners
) -> None:  # type: ignore[no-untyped-def]
    out, _ = fitted
    voice = load_deep_voice(out / "deep.npz")
    served = _speak(engine, SENTENCE, VoiceSpec("deep-test", 1, {"deep_file": str(out / "deep.npz")}))
    stock = engine.synthesize_style(SENTENCE, stock_packs()[START_PACK])
    ids = phoneme_ids(engine, SENTENCE)
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
    encoder = listeners.encoder
    assert float(encoder.embed(served, SAMPLE_RATE) @ encoder.embed(fitted_audio.numpy(), SAMPLE_RATE)) > 0.9
    assert not np.allclose(served[: len(stock)], stock[: len(served)], atol=1e-3)  # the voice's own weights were used


def test_acceptance_refuses_a_voice_further_from_the_speaker(engine: KokoroEngine, reference, listeners) -> None:
    import soxr

    audio, sr = reference
    rng = np.random.default_rng(0)
    ref16 = soxr.resample(audio, sr, 16_000)
    instant = lambda text: engine.synthesize_style(text, stock_packs()["jf_alpha"])  # noqa: E731
    noise = lambda text: 0.1 * rng.standard_normal(SAMPLE_RATE * 2).astype(np.float32)  # noqa: E731
    worse = judge(instant, noise, SAMPLE_RATE, [ref16], 2.0, 1.5, listeners.encoder, listeners.transcriber)
    assert not worse.accepted and worse.scores["wer_deep"] > worse.scores["wer_instant"]
    not_fitted = judge(instant, instant, SAMPLE_RATE, [ref16], 2.0, 2.0, listeners.encoder, listeners.transcriber)
    assert not not_fitted.accepted and "held-out" in not_fitted.reason


def _run_job(job: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen([sys.executable, "-m", "voxclone.engines.kokoro_deep", str(job)], env=env)


def test_a_killed_fit_resumes_from_its_checkpoint(reference, engine: KokoroEngine, tmp_path: Path) -> None:
    audio, sr = reference
    job = tmp_path / "job"
    options = {**SHORT_FIT, "max_steps": 60, "checkpoint_every": 1}
    write_job(job, engine.model_file(), [(audio, sr, None)], stock_packs()[START_PACK], [], options, threads=2)
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
    spec["options"]["max_steps"] = killed_at + 2
    (job / "job.json").write_text(json.dumps(spec))
    resumed = _run_job(job)
    assert resumed.wait(timeout=600) == 0, read_progress(job)
    assert read_progress(job)["state"] == "done"
    result = json.loads((job / "result.json").read_text())
    assert result["fit"]["steps"] == killed_at + 2  # continued, not restarted
    assert set(result["scores"]) >= {"similarity_deep", "similarity_instant", "wer_deep", "wer_instant"}


def test_a_failed_fit_says_why_and_leaves_no_voice(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.json").write_text(json.dumps({"model": "/nonexistent.onnx", "references": [], "style": "missing.npy"}))
    process = _run_job(job)
    assert process.wait(timeout=120) == 1
    assert read_progress(job)["state"] == "failed"
    assert json.loads((job / "result.json").read_text())["accepted"] is False
    assert not (job / "deep.npz").exists()


def test_an_unreadable_deep_voice_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "deep.npz"
    bad.write_bytes(b"not a voice")
    with pytest.raises(BadInput):
        load_deep_voice(bad)


# Through the server ---------------------------------------------------------------------------------


def _voice(server, voice_id: str) -> dict:
    return httpx.get(f"{server.url}/v1/voices/{voice_id}", timeout=30).json()


def _wait(server, voice_id: str, until, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        voice = _voice(server, voice_id)
        if until(voice):
            return voice
        time.sleep(0.5)
    pytest.fail(f"voice never got there: {voice}")


def _speaks(server, voice: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"input": "Good morning to you.", "voice": voice, "response_format": "wav"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    audio, rate = decode_audio(response.content)
    assert audio.size > 0.5 * rate


@pytest.fixture
def deep_settings(settings):
    return settings.model_copy(update={"enrolment_time_budget_s": 8.0, "clone_engine": "kokoro"})


def test_a_deep_clone_through_the_server_speaks_at_once_and_the_server_answers_while_it_fits(
    deep_settings, make_live_server, reference
) -> None:
    cloners = Cloners([InstantCloner(), DeepCloner(threads=2, options=SHORT_FIT)])
    server = make_live_server(deep_settings, Parts(cloners=cloners))
    audio, sr = reference
    wav = Path(deep_settings.data_dir) / "me.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav, audio, sr)
    added = httpx.post(
        f"{server.url}/v1/voices/add",
        data={"name": "Reader 103", "tier": "deep"},
        files=[("files", ("me.wav", wav.read_bytes()))],
        timeout=60,
    )
    assert added.status_code == 200, added.text
    voice_id = added.json()["voice_id"]
    voice = _wait(server, voice_id, lambda v: v["status"] != "enrolling")
    assert voice["status"] == "ready" and voice["tier"] == "instant"
    voice = _wait(server, voice_id, lambda v: v["refining"]["status"] != "queued")
    assert voice["refining"]["status"] == "running"  # the fit's own process is working now, and meanwhile:
    _speaks(server, voice_id)  # the voice speaks, with its instant clone
    _speaks(server, "jm_kumo")  # and so does every other voice
    assert _voice(server, voice_id)["refining"]["status"] == "running"
    voice = _wait(server, voice_id, lambda v: v["refining"]["status"] not in ("queued", "running"))
    assert voice["refining"]["status"] == "done", voice["refining"]
    scores = voice["scores"]
    assert (
        scores["deep_held_out_loss"] < scores["deep_held_out_loss_start"]
    )  # closer to the unseen audio than the instant clone
    assert scores["deep_steps"] == SHORT_FIT["max_steps"]
    if voice["tier"] == "deep":  # judged better: it speaks with its fitted weights now
        assert voice["version"] > 1 and "speaks with its deep clone" in voice["refining"]["message"]
    else:  # six steps may not be enough to be judged better; the instant clone stays
        assert voice["refining"]["message"].startswith("kept instant: ")
    _speaks(server, voice_id)


def test_a_deep_fit_that_fails_leaves_the_instant_voice_speaking(deep_settings, make_client, runtime) -> None:
    # A voice as an instant clone left it (a stock pack's table as its style), with its recording stored.
    voice = runtime.library.create(
        name="Instant", engine="kokoro", params={"style_file": "style.npy"}, category="cloned", tier="instant"
    )
    style = io.BytesIO()
    np.save(style, stock_packs()[START_PACK])
    runtime.library.blobs.put(voice.id, {"style.npy": style.getvalue()})
    recording = sorted(DATA.glob(f"{SPEAKER}-*.flac"))[0].read_bytes()
    store(runtime.library.blobs, voice.id, prepare(recording, "me.flac", max_seconds=600))
    client = make_client(
        deep_settings, Parts(cloners=Cloners([InstantCloner(), DeepCloner(options={"no_such_option": 1})]))
    )
    assert client.post(f"/v1/voices/{voice.id}/edit", data={"tier": "deep"}).status_code == 200
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        refining = client.get(f"/v1/voices/{voice.id}").json()["refining"]
        if refining["status"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    assert refining["status"] == "failed" and "no_such_option" in refining["message"], refining
    after = client.get(f"/v1/voices/{voice.id}").json()
    assert after["status"] == "ready" and after["tier"] == "instant" and after["error"] is None
    speech = client.post("/v1/audio/speech", json={"input": "Still here.", "voice": voice.id, "response_format": "wav"})
    assert speech.status_code == 200
