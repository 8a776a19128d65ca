"""Deep fit cost: wall time and memory of the real fit process for 10 s, 30 s and 2-3 minutes of reference.

LibriSpeech gives this project one 10-15 s clip per speaker, so the longer references come from the one
real speaker it can have any amount of: Piper's `joe` (a single-speaker voice trained on one man's
recordings, which Kokoro never saw), reading the speech corpus's sentences and some more. For each length the fit runs
exactly as the server runs it: an instant clone of the reference first (CloneJob, InstantCloner), then
DeepCloner, which starts `python -m voxclone.engines.kokoro_deep JOB_DIR` as its own niced process with
--threads threads and the product's 10-minute fit budget, and judges the result against the instant
clone. Reported per length: the instant clone's time, the deep job's phases (aligning, fitting,
checking; from the progress it reports), the fit process's peak resident memory (sampled every 0.1 s,
and the kernel's own peak for waited-for children), steps, the verdict, and GE2E (the judge,
resemblyzer) of both voices against held-out speech of joe: more reference must not make it worse.

    PYTHONPATH=. .venv/bin/python bench/deep_fit_cost.py [--lengths 10,30,150] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clone_quality import Judge, speak, speak_voice, wer_of  # noqa: E402
from speech_corpus import SENTENCES  # noqa: E402

from voxclone.asr import Transcriber  # noqa: E402
from voxclone.audio import resample  # noqa: E402
from voxclone.cloning import ClonedVoice, CloneJob, NotBetter, Reference  # noqa: E402
from voxclone.embedding import SpeakerEncoder  # noqa: E402
from voxclone.engines import SpeakOptions, VoiceSpec  # noqa: E402
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine  # noqa: E402
from voxclone.engines.kokoro_clone import InstantCloner  # noqa: E402
from voxclone.engines.kokoro_deep.cloner import DeepCloner  # noqa: E402
from voxclone.engines.piper import PiperEngine  # noqa: E402
from voxclone.filters import build_chain  # noqa: E402

HELD_OUT = 4  # the corpus's last sentences: joe's held-out speech, never in a reference
# With the corpus's 36 others, about 2.5 minutes of reference.
MORE_SENTENCES = (
    "The baker on the corner opens at six, and the line reaches the street by seven.",
    "We spent the whole afternoon sorting old photographs into boxes by year.",
    "When the power went out, the children played cards by the light of a candle.",
    "The museum added a new wing for maps, globes and instruments used by sailors.",
    "My neighbour grows peppers on the balcony and gives most of them away.",
    "The storm delayed every flight, so the airport was full of tired travellers.",
    "He practised the piano for an hour each morning before going to work.",
    "The river was low that summer, and you could walk across on the stones.",
    "Our team finished the report on Friday and sent it to the printer.",
    "A small dog followed us all the way from the market to the front door.",
    "The recipe calls for two eggs, a cup of flour and a pinch of salt.",
    "They painted the fence green, then changed their minds and painted it white.",
    "The mountain road is narrow, so drive slowly and watch for falling rocks.",
    "Every evening the lighthouse keeper climbed the stairs to light the lamp.",
    "The students planted a row of oak trees along the edge of the playground.",
    "I found my grandfather's watch in a drawer, still ticking after all these years.",
    "The concert started late because the singer was stuck in traffic downtown.",
    "She wrote the address on the envelope and walked it to the post office.",
    "The farmer checked the sky and decided to bring the hay in before the rain.",
    "Our old car makes a strange noise whenever it climbs a steep hill.",
    "The hotel window looked out over a square with a fountain and two cafes.",
    "He borrowed a ladder from the neighbours to clean the leaves from the gutter.",
    "The train to the coast runs every hour on weekends during the summer.",
    "We watched the geese fly south in a long uneven line across the sky.",
)


def joe_speech() -> list[np.ndarray]:
    """Each corpus sentence read by Piper's joe (float32 mono at Kokoro's rate, 24 kHz)."""
    engine = PiperEngine()
    engine.load()
    spec = VoiceSpec("joe", 1, {"stock": "joe"})
    pieces = []
    for text in (*MORE_SENTENCES, *SENTENCES):
        chunks = list(engine.synthesize(text, spec, SpeakOptions()))
        audio = np.concatenate([c.samples for c in chunks])
        pieces.append(resample(audio, chunks[0].sample_rate, SAMPLE_RATE))
    return pieces


def reference_of(pieces: list[np.ndarray], seconds: float) -> np.ndarray:
    """Whole sentences, with 0.3 s pauses, until `seconds` of audio."""
    pause = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    out: list[np.ndarray] = []
    for piece in pieces:
        if sum(len(p) for p in out) >= seconds * SAMPLE_RATE:
            break
        out += [piece, pause]
    return np.concatenate(out)


class PeakMemory:
    """Samples the resident memory of this process's children (the fit process) until stopped."""

    def __init__(self, every: float = 0.1) -> None:
        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self._every):
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # it may end between listing and reading
                    self.peak = max(self.peak, child.memory_info().rss)


class Phases:
    """When the deep job first reported each phase (DeepCloner's progress messages)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: dict[str, float] = {}

    def __call__(self, fraction: float, message: str, eta_s: float | None = None) -> None:
        phase = message.split(",")[0].split(" ")[0]  # aligning / fitting / comparing / starting / finished
        self.first.setdefault(phase, time.perf_counter() - self.t0)


def judged(judge: Judge, held: np.ndarray, pieces: list[np.ndarray]) -> float:
    return float(judge.embed(np.concatenate(pieces), SAMPLE_RATE) @ held)


def run_length(seconds: float, pieces, engine, judge, held_e, encoder, transcriber, args) -> dict:  # type: ignore[no-untyped-def]
    reference = reference_of(pieces[:-HELD_OUT], seconds)
    work = Path(tempfile.mkdtemp(prefix=f"deep-cost-{int(seconds)}-"))
    (work / "instant").mkdir()
    job = CloneJob.direct(
        engine, [Reference(reference, SAMPLE_RATE)], encoder, transcriber, budget_s=90.0, workdir=work / "instant"
    )
    t0 = time.perf_counter()
    instant = InstantCloner().clone(job)
    instant_s = time.perf_counter() - t0
    style = np.load(io.BytesIO(instant.files["style.npy"]))
    instant_pieces, _, _ = speak(engine, style, build_chain(instant.filters))

    phases = Phases()
    deep_job = dataclasses.replace(job, current=instant, workdir=work / "deep", progress=phases)
    deep_job.workdir.mkdir()
    cloner = DeepCloner(budget_s=args.deep_budget, threads=args.threads)
    with PeakMemory() as memory:
        try:
            deep: ClonedVoice | None = cloner.clone(deep_job)
            scores = deep.scores
        except NotBetter as e:
            deep, scores = None, e.scores
    wall = time.perf_counter() - phases.t0
    result = json.loads((deep_job.workdir / "result.json").read_text())
    chain = build_chain(result.get("filters", []))  # the verdict's filters, written whether or not accepted
    deep_spec = VoiceSpec(f"deep-cost-{int(seconds)}", 1, {"deep_file": str(deep_job.workdir / "deep.npz")})
    deep_pieces, _ = speak_voice(engine, deep_spec, chain)
    start = phases.first
    return {
        "reference_s": round(len(reference) / SAMPLE_RATE, 1),
        "instant_s": round(instant_s, 1),
        "deep_wall_s": round(wall, 1),
        "starting_s": round(start.get("aligning", 0.0), 1),  # the process loads the engine and the model
        "aligning_s": round(start.get("fitting", wall) - start.get("aligning", 0.0), 1),
        "fitting_s": round(start.get("comparing", wall) - start.get("fitting", wall), 1),
        "checking_s": round(wall - start.get("comparing", wall), 1),
        "fit_peak_rss_mib": round(memory.peak / 2**20),
        "steps": result.get("fit", {}).get("steps"),
        "best_step": result.get("fit", {}).get("best_step"),
        "accepted": deep is not None,
        "reason": result.get("reason"),
        "scores": {k: v for k, v in scores.items() if k.startswith("deep")},
        "ge2e_instant": judged(judge, held_e, instant_pieces),
        "ge2e_deep": judged(judge, held_e, deep_pieces),
        "wer_instant": wer_of(instant_pieces, transcriber),
        "wer_deep": wer_of(deep_pieces, transcriber),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="10,30,150", help="reference lengths to fit from (s)")
    ap.add_argument("--threads", type=int, default=2, help="the fit process's threads (the server's default: CPUs)")
    ap.add_argument("--deep-budget", type=float, default=600.0, help="the fit's wall-time budget (s)")
    args = ap.parse_args()

    pieces = joe_speech()
    print(f"joe: {len(pieces)} sentences, {sum(len(p) for p in pieces) / SAMPLE_RATE:.0f} s", flush=True)
    engine = KokoroEngine(Path("/tmp/vx-models"))
    engine.load()
    judge, encoder, transcriber = Judge(), SpeakerEncoder(), Transcriber()
    held_e = judge.embed(np.concatenate(pieces[-HELD_OUT:]), SAMPLE_RATE)
    rows = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = ROOT / "bench" / "out" / f"deep_fit_cost-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for seconds in (float(s) for s in args.lengths.split(",")):
        rows.append(run_length(seconds, pieces, engine, judge, held_e, encoder, transcriber, args))
        print(json.dumps(rows[-1], default=float), flush=True)
        out.write_text(json.dumps({"args": vars(args), "rows": rows}, default=float, indent=1))
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"kernel's peak of any fit process: {children_peak:.0f} MiB; JSON: {out}")
    print(
        "| reference | instant clone | deep job (start / align / fit / check) | steps (best) | fit process peak RSS | accepted | GE2E instant -> deep | WER instant / deep |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['reference_s']} s | {r['instant_s']:.0f} s | {r['deep_wall_s']:.0f} s ({r['starting_s']:.0f} / {r['aligning_s']:.0f} / "
            f"{r['fitting_s']:.0f} / {r['checking_s']:.0f}) | {r['steps']} ({r['best_step']}) | "
            f"{r['fit_peak_rss_mib']} MiB | {r['accepted']} | {r['ge2e_instant']:.3f} -> {r['ge2e_deep']:.3f} | "
            f"{r['wer_instant']:.3f} / {r['wer_deep']:.3f} |"
        )


if __name__ == "__main__":
    main()
