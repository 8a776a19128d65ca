"""Serving a deep-cloned voice: does the engine speak what the fit made, and at a stock voice's speed?

For one deep voice (a `deep.npz` written by the deep fit, e.g. under bench/out/deep-*/SPEAKER/), on each
Kokoro runtime:
- agreement: the PyTorch model with the fitted weights vs the served voice (the shipped graph with the
  voice's weights in place), on three sentences: GE2E and d-vector similarity, median-F0 ratio;
- speed: time to first audio (a short first clause, as a stream starts) and real-time factor (a
  paragraph), stock voice vs deep voice, interleaved, medians of --repeats.

Run (from the repo root; needs the `deep` extra and the judge):

    python bench/deep_serving.py bench/out/deep-STAMP/27/deep.npz [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from clone_quality import TEST_SENTENCES, Judge  # noqa: E402

from voxclone.embedding import SpeakerEncoder  # noqa: E402
from voxclone.engines import SpeakOptions, VoiceSpec  # noqa: E402
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine, assemble_model  # noqa: E402
from voxclone.engines.kokoro_adapted import DeepVoice  # noqa: E402
from voxclone.engines.kokoro_adapted import load as load_deep_voice  # noqa: E402
from voxclone.engines.kokoro_deep.model import bias_owner, load  # noqa: E402
from voxclone.engines.kokoro_deep.run import phoneme_ids  # noqa: E402
from voxclone.spectrum import voice_stats  # noqa: E402

FIRST_CLAUSE = "Hello there,"
PARAGRAPH = (
    "The committee met on a grey Tuesday morning to review the budget. After two hours of discussion, "
    "they agreed to fund the new library wing, provided the builders finish before the winter rains."
)
MODELS = Path("/tmp/vx-models")


def torch_speech(model, engine: KokoroEngine, voice: DeepVoice) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """The test sentences from the PyTorch model with the voice's fitted weights."""
    out = []
    with torch.no_grad():
        for name, value in voice.initializers.items():
            bias_owner(model, name).bias.copy_(torch.from_numpy(value))
        for text in TEST_SENTENCES:
            ids = phoneme_ids(engine, text)
            out.append(model.synthesize(ids, torch.from_numpy(voice.style[len(ids) - 1].copy()))[0].numpy())
    return out


def speak(engine: KokoroEngine, text: str, spec: VoiceSpec) -> np.ndarray:
    return np.concatenate([c.samples for c in engine.synthesize(text, spec, SpeakOptions())])


def timed(engine: KokoroEngine, text: str, spec: VoiceSpec) -> tuple[float, float]:
    t0 = time.perf_counter()
    audio = speak(engine, text, spec)
    seconds = time.perf_counter() - t0
    return seconds, seconds / (len(audio) / SAMPLE_RATE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("voice", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runtimes", default="onnxruntime,openvino")
    args = ap.parse_args()

    voice = load_deep_voice(args.voice)
    torch.set_num_threads(2)
    model = load(assemble_model(MODELS))
    judge, dvec = Judge(), SpeakerEncoder()
    report: dict[str, dict] = {}
    for runtime in args.runtimes.split(","):
        engine = KokoroEngine(MODELS, runtime=runtime)
        engine.load()
        if engine.runtime != runtime:
            print(f"{runtime}: not available here, skipped")
            continue
        reference = np.concatenate(torch_speech(model, engine, voice))
        deep = VoiceSpec("deep", 1, {"deep_file": str(args.voice.resolve())})
        served = np.concatenate([speak(engine, t, deep) for t in TEST_SENTENCES])
        f0_torch = voice_stats([reference], SAMPLE_RATE).f0_median
        f0_served = voice_stats([served], SAMPLE_RATE).f0_median
        row = {
            "ge2e_torch_vs_served": float(judge.embed(reference, SAMPLE_RATE) @ judge.embed(served, SAMPLE_RATE)),
            "dvec_torch_vs_served": float(dvec.embed(reference, SAMPLE_RATE) @ dvec.embed(served, SAMPLE_RATE)),
            "f0_ratio_served_over_torch": f0_served / f0_torch if f0_torch else float("nan"),
        }
        stock = VoiceSpec("stock", 1, {"pack": "jm_kumo"})
        times: dict[str, list[tuple[float, float]]] = {
            "stock_first": [],
            "deep_first": [],
            "stock_para": [],
            "deep_para": [],
        }
        for spec in (stock, deep):  # warm: sessions built, kernels prepared
            speak(engine, FIRST_CLAUSE, spec)
        for _ in range(args.repeats):
            for name, spec in (("stock", stock), ("deep", deep)):
                times[f"{name}_first"].append(timed(engine, FIRST_CLAUSE, spec))
                times[f"{name}_para"].append(timed(engine, PARAGRAPH, spec))
        for name in ("stock", "deep"):
            row[f"ttfa_{name}_s"] = statistics.median(t for t, _ in times[f"{name}_first"])
            row[f"rtf_{name}"] = statistics.median(r for _, r in times[f"{name}_para"])
        row["ttfa_ratio"] = row["ttfa_deep_s"] / row["ttfa_stock_s"]
        row["rtf_ratio"] = row["rtf_deep"] / row["rtf_stock"]
        report[runtime] = row
        print(runtime, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    out = ROOT / "bench" / "out" / f"deep_serving-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"voice": str(args.voice), "repeats": args.repeats, "runtimes": report}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
