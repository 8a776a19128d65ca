"""Style-space ceiling: how close could a Kokoro clone get if its search were scored by the judge itself?

The product may never score candidates with GE2E (it is the judge), so this is a bound, not a feature.
For each speaker (split as in clone_quality.py: the first 65 % of the clip is the reference, the rest is
held out), the product's instant cloner makes its clone. Then the product's own search machinery (CloneSearch:
probe sentences, equaliser and shape mapping fitted to each candidate, pitch penalty) runs again from that
clone with two things changed in the search's favour:

- its encoder is GE2E, the judge, instead of the voicefilter d-vector;
- its space is five times wider: 32 principal directions of the pack's timbre half and 8 of the prosody
  half around the product's clone, instead of 5 + 5 pack weights and 8 timbre directions;

and it may evaluate --evals candidates (the product manages about 37 in its time budget). Both styles are
then judged as in clone_quality.py: the three test sentences against the held-out audio. If even this
search stays far from 0.85, the gap lies in what Kokoro's style space can express, not in the scorer.

Run (from the repo root, venv active; needs torch==2.13.0 and resemblyzer==0.1.4):

    python bench/style_ceiling.py --speakers 10 [--evals 72]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from clone_quality import REF_FRACTION, Judge, clip, pick_speakers, speak, wer_of  # noqa: E402

from voxclone.asr import Transcriber  # noqa: E402
from voxclone.cloning import CloneJob, Reference  # noqa: E402
from voxclone.embedding import SpeakerEncoder  # noqa: E402
from voxclone.engines.kokoro import SAMPLE_RATE, KokoroEngine, stock_packs  # noqa: E402
from voxclone.engines.kokoro_clone import Candidate, CloneSearch, InstantCloner  # noqa: E402
from voxclone.engines.kokoro_space import HALF, StyleSpace, principal_directions  # noqa: E402
from voxclone.filters import FilterChain, build_chain  # noqa: E402
from voxclone.spectrum import to_analysis_rate  # noqa: E402

TIMBRE_DIRECTIONS, PROSODY_DIRECTIONS = 32, 8
MAX_COEF = 2.0
POPULATION = 6


class WideSpace:
    """Offsets around one style table along principal directions of both halves (CloneSearch needs .table)."""

    def __init__(self, base: np.ndarray, tables: np.ndarray) -> None:
        self.base = base.astype(np.float32)
        self.timbre = principal_directions(tables, slice(0, HALF), TIMBRE_DIRECTIONS)
        self.prosody = principal_directions(tables, slice(HALF, 2 * HALF), PROSODY_DIRECTIONS)
        self.dim = TIMBRE_DIRECTIONS + PROSODY_DIRECTIONS

    def table(self, x: np.ndarray) -> np.ndarray:
        c = np.clip(x, -MAX_COEF, MAX_COEF)
        out = self.base.copy()
        out[:, :HALF] += c[:TIMBRE_DIRECTIONS] @ self.timbre
        out[:, HALF:] += c[TIMBRE_DIRECTIONS:] @ self.prosody
        return out


def judged_search(search: CloneSearch, dim: int, evals: int, seed: int) -> Candidate:
    """A (1+6) evolution strategy with success-based step size; returns the best candidate by the judge."""
    rng = np.random.default_rng(seed)
    best, sigma = search.evaluate(np.zeros(dim)), 0.6
    while len(search.evaluated) + POPULATION <= evals + 1:
        children = [search.evaluate(best.x + sigma * rng.standard_normal(dim)) for _ in range(POPULATION)]
        top = max(children, key=lambda c: c.score)
        if top.score > best.score:
            best, sigma = top, sigma * 1.1
        else:
            sigma = max(0.2, sigma * 0.85)
    return best


def judged(
    engine: KokoroEngine,
    judge: Judge,
    style: np.ndarray,
    chain: FilterChain,
    held: np.ndarray,
    transcriber: Transcriber,
) -> tuple[float, float]:
    pieces, _, _ = speak(engine, style, chain)
    return float(judge.embed(np.concatenate(pieces), SAMPLE_RATE) @ held), wer_of(pieces, transcriber)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speakers", type=int, default=10)
    ap.add_argument("--ids", type=str, default="")
    ap.add_argument("--evals", type=int, default=72, help="candidates the judged search may evaluate")
    ap.add_argument("--budget", type=float, default=90.0, help="the product clone's time budget (s)")
    args = ap.parse_args()

    ids = args.ids.split(",") if args.ids else pick_speakers(args.speakers)
    engine = KokoroEngine(Path("/tmp/vx-models"))
    engine.load()
    judge, transcriber, dvec, cloner = Judge(), Transcriber(), SpeakerEncoder(), InstantCloner()
    tables = StyleSpace.from_packs(stock_packs()).tables
    rows = []
    for sid in ids:
        audio, sr = clip(sid)
        cut = int(len(audio) * REF_FRACTION)
        held = judge.embed(audio[cut:], sr)
        job = CloneJob.direct(
            engine,
            [Reference(audio[:cut], sr)],
            dvec,
            transcriber,
            budget_s=args.budget,
            workdir=Path(tempfile.mkdtemp()),
        )
        product = cloner.clone(job)
        product_style = np.load(io.BytesIO(product.files["style.npy"]))
        space = WideSpace(product_style, tables)
        search = CloneSearch(
            lambda table, text: engine.synthesize_style(text, table),
            judge,
            transcriber,  # type: ignore[arg-type]
            space,
            [to_analysis_rate(audio[:cut], sr)],
        )  # type: ignore[arg-type]
        t0 = time.perf_counter()
        best = judged_search(search, space.dim, args.evals, seed=0)
        chain, _ = search.finish(best)
        row = {"speaker": sid, "evals": len(search.evaluated), "search_s": round(time.perf_counter() - t0, 1)}
        row["ge2e_product"], row["wer_product"] = judged(
            engine, judge, product_style, build_chain(product.filters), held, transcriber
        )
        row["ge2e_judged"], row["wer_judged"] = judged(engine, judge, space.table(best.x), chain, held, transcriber)
        row["objective_start"], row["objective_best"] = search.evaluated[0].similarity, best.similarity
        rows.append(row)
        print(
            f"{sid}: held-out GE2E product {row['ge2e_product']:.3f} -> judged search {row['ge2e_judged']:.3f} "
            f"(objective {row['objective_start']:.3f} -> {row['objective_best']:.3f}), "
            f"WER {row['wer_product']:.3f} -> {row['wer_judged']:.3f}",
            flush=True,
        )
    means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "speaker"}
    print("mean: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"style_ceiling-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "rows": rows, "means": means}, indent=1, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
