"""Clone-quality benchmark: how much a cloned Kokoro voice sounds like real LibriSpeech speakers.

For each speaker (one 10-15 s clip in ../shared/data/librispeech_train-clean-100), the first 65 % is the
reference given to the instant cloner and the rest is held out. The clone then speaks three sentences that
are not in the reference, and is judged against the held-out audio with GE2E (resemblyzer, which the
optimiser never uses), the voicefilter d-vector, identification among all benchmarked speakers,
Whisper tiny.en WER, enrolment wall time and synthesis RTF (stock pack vs clone, filters included).

Run (from the repo root, venv active; the judge needs torch==2.13.0 and resemblyzer==0.1.4):

    python bench/clone_quality.py --speakers 10 --budget 90 [--runtime onnxruntime]
    python bench/clone_quality.py --speakers 10 --tier deep --deep-budget 600 [--curve-every 25]

`--tier deep` also fits the deep clone (voxclone.engines.kokoro_deep, needs the `deep` extra) from each instant
clone, in this process (as the fit process runs it, with --threads torch threads), and reports instant and
deep side by side: GE2E, identification, WER, the deep clone's wall time (aligning, fitting and the final
check; the judging for the curve is not counted) and the acceptance check's verdict (the voice served is
the deep one only when it is accepted), plus a curve of held-out GE2E against fit steps (the fit is
resumed from its checkpoint every --curve-every steps and judged through the served engine, without
filters), written as JSON and a PNG plot.

`--ids 26,19,...` picks speakers explicitly; the default takes the first N/2 male and N/2 female
speakers (sorted by id) whose clip is at least 12 s long. JSON lands in bench/out/.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voxclone.asr import Transcriber, word_error_rate  # noqa: E402
from voxclone.cloning import ClonedVoice, CloneJob, Reference  # noqa: E402
from voxclone.embedding import SpeakerEncoder  # noqa: E402
from voxclone.engines import SpeakOptions, VoiceSpec  # noqa: E402
from voxclone.engines.kokoro import RUNTIMES, SAMPLE_RATE, KokoroEngine, stock_packs  # noqa: E402
from voxclone.engines.kokoro_clone import InstantCloner  # noqa: E402
from voxclone.filters import FilterChain, build_chain  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "librispeech_train-clean-100"
TEST_SENTENCES = (
    "A cold wind blew across the harbor as the fishing boats came home.",
    "Please remember to bring your notebook and a pencil to the meeting tomorrow.",
    "The old library was quiet, except for the ticking of a clock above the door.",
)
REF_FRACTION = 0.65


def speakers_table() -> dict[str, str]:
    """Speaker id -> 'M' or 'F', for the speakers whose clip is present."""
    sexes = {}
    for line in (DATA / "SPEAKERS.TXT").read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"\s*(\d+)\s*\|\s*([MF])\s*\|", line)
        if m:
            sexes[m.group(1)] = m.group(2)
    present = {p.name.split("-")[0]: p for p in DATA.glob("*.flac")}
    return {sid: sexes[sid] for sid in present if sid in sexes}


def clip(speaker: str) -> tuple[np.ndarray, int]:
    path = next(DATA.glob(f"{speaker}-*.flac"))
    audio, sr = sf.read(path, dtype="float32")
    return audio, sr


def pick_speakers(n: int) -> list[str]:
    table = speakers_table()
    chosen: list[str] = []
    for sex in ("M", "F"):
        ids = sorted((s for s in table if table[s] == sex), key=int)
        long_enough = [s for s in ids if len(clip(s)[0]) >= 12 * 16_000]
        chosen += long_enough[: (n + (sex == "M")) // 2]
    return chosen


class Judge:
    """GE2E (resemblyzer) embeddings: the benchmark's judge, never used by the optimiser."""

    def __init__(self) -> None:
        import torch
        from resemblyzer import VoiceEncoder, preprocess_wav

        torch.set_num_threads(2)
        self._encoder = VoiceEncoder("cpu", verbose=False)
        self._pre = preprocess_wav

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        return self._encoder.embed_utterance(self._pre(audio.astype(np.float32), source_sr=sr))

    def embed_windows(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """One embedding per 1.6 s window: the interface of the product's SpeakerEncoder (style_ceiling.py)."""
        _, partials, _ = self._encoder.embed_utterance(
            self._pre(audio.astype(np.float32), source_sr=sr), return_partials=True
        )
        return partials


def speak(engine: KokoroEngine, style: np.ndarray, chain: FilterChain) -> tuple[list[np.ndarray], float, float]:
    """The test sentences in one voice; RTF of synthesis + filters, and RTF of the filters alone."""
    pieces, synth_s, post_s = [], 0.0, 0.0
    for text in TEST_SENTENCES:
        t0 = time.perf_counter()
        raw = engine.synthesize_style(text, style)
        t1 = time.perf_counter()
        pieces.append(chain.apply(raw, SAMPLE_RATE))
        synth_s, post_s = synth_s + t1 - t0, post_s + time.perf_counter() - t1
    seconds = sum(len(p) for p in pieces) / SAMPLE_RATE
    return pieces, (synth_s + post_s) / seconds, post_s / seconds


def paired_rtf(engine: KokoroEngine, stock: np.ndarray, clone: np.ndarray, chain: FilterChain) -> tuple[float, float]:
    """(stock RTF, clone RTF), interleaved and best of 2 each, so CPU contention from other jobs hits both alike."""
    runs: dict[str, list[float]] = {"stock": [], "clone": []}
    for _ in range(2):
        runs["stock"].append(speak(engine, stock, FilterChain())[1])
        runs["clone"].append(speak(engine, clone, chain)[1])
    return min(runs["stock"]), min(runs["clone"])


def wer_of(pieces: list[np.ndarray], transcriber: Transcriber) -> float:
    errors = [
        word_error_rate(t, transcriber.transcribe(p, SAMPLE_RATE)) * len(t.split())
        for t, p in zip(TEST_SENTENCES, pieces, strict=True)
    ]
    return sum(errors) / sum(len(t.split()) for t in TEST_SENTENCES)


def speak_voice(
    engine: KokoroEngine, voice: VoiceSpec, chain: FilterChain | None = None
) -> tuple[list[np.ndarray], float]:
    """The test sentences in a library-style voice (a deep one: its own session), through its filters; and its RTF."""
    chain = chain or FilterChain()
    t0 = time.perf_counter()
    pieces = [
        chain.apply(np.concatenate([c.samples for c in engine.synthesize(text, voice, SpeakOptions())]), SAMPLE_RATE)
        for text in TEST_SENTENCES
    ]
    return pieces, (time.perf_counter() - t0) / (sum(len(p) for p in pieces) / SAMPLE_RATE)


def deep_spec(path: Path, version: int) -> VoiceSpec:
    return VoiceSpec(f"deep-{path.parent.name}", version, {"deep_file": str(path)})


def deep_tier(engine, model, judge, held_e, ref, result: ClonedVoice, out_dir: Path, args, encoder, transcriber):  # type: ignore[no-untyped-def]
    """Fit the deep clone from `result` (the instant clone) in slices of --curve-every steps, judging the
    voice after each; then the acceptance check. Returns the row's deep fields and the deep voice's GE2E embedding."""
    from voxclone.engines.kokoro_deep.fit import FitOptions
    from voxclone.engines.kokoro_deep.run import fit_voice

    audio, sr = ref
    style = np.load(io.BytesIO(result.files["style.npy"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    start_pieces = [engine.synthesize_style(t, style) for t in TEST_SENTENCES]
    curve = [(0, float(judge.embed(np.concatenate(start_pieces), SAMPLE_RATE) @ held_e))]
    print(f"  deep step 0 (the instant clone's style, no filters): held-out GE2E {curve[0][1]:.3f}", flush=True)
    worked_s, steps, outcome = 0.0, 0, None

    def fit(max_steps: int, check: bool):  # type: ignore[no-untyped-def]
        nonlocal worked_s
        options = FitOptions(time_budget_s=args.deep_budget, max_steps=max_steps)
        t0 = time.perf_counter()
        done = fit_voice(
            engine,
            model,
            [(audio, sr, None)],
            style,
            result.filters,
            out_dir,
            encoder,
            transcriber,
            options,
            check=check,
        )
        worked_s += time.perf_counter() - t0
        return done

    for stop in range(args.curve_every, args.deep_steps + args.curve_every, args.curve_every):
        outcome = fit(min(stop, args.deep_steps), check=False)
        pieces, _ = speak_voice(engine, deep_spec(out_dir / "deep.npz", outcome.fit.steps + 1))
        curve.append((outcome.fit.steps, float(judge.embed(np.concatenate(pieces), SAMPLE_RATE) @ held_e)))
        print(
            f"  deep step {outcome.fit.steps}: held-out GE2E {curve[-1][1]:.3f} (loss {outcome.fit.held_out_best:.3f})",
            flush=True,
        )
        if outcome.fit.steps == steps or outcome.fit.steps < stop:  # stopped: budget or early stopping
            break
        steps = outcome.fit.steps
    assert outcome is not None
    final = fit(outcome.fit.steps, check=True)
    verdict = final.verdict
    assert verdict is not None
    chain = build_chain(verdict.filters)
    pieces, _ = speak_voice(engine, deep_spec(out_dir / "deep.npz", 10_000), chain)
    e = judge.embed(np.concatenate(pieces), SAMPLE_RATE)
    fields = {
        "ge2e_deep": float(e @ held_e),
        "wer_deep": wer_of(pieces, transcriber),
        "deep_fit_s": final.fit.seconds,
        "deep_wall_s": worked_s,
        "deep_steps": final.fit.steps,
        "deep_best_step": final.fit.best_step,
        "deep_filters": len(verdict.filters),
        "accepted": verdict.accepted,
        "acceptance": verdict.scores,
        "curve": curve,
        "loss_curve": final.fit.curve,
    }
    return fields, e, chain


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        steps, ge2e = zip(*row["curve"], strict=True)
        ax.plot(steps, ge2e, marker="o", label=f"{row['speaker']} ({row['sex']})")
        ax.axhline(row["ge2e_clone"], color=ax.lines[-1].get_color(), linestyle=":", linewidth=0.8)
    ax.set_xlabel("deep fit steps")
    ax.set_ylabel("GE2E similarity to held-out audio")
    ax.set_title("Deep clone: held-out similarity vs steps (dotted: instant clone as served)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speakers", type=int, default=10)
    ap.add_argument("--ids", type=str, default="")
    ap.add_argument("--budget", type=float, default=90.0, help="instant clone time budget (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runtime", choices=RUNTIMES, default="auto", help="Kokoro's runtime")
    ap.add_argument("--tier", choices=("instant", "deep"), default="instant", help="also fit and report the deep clone")
    ap.add_argument("--deep-budget", type=float, default=600.0, help="deep fit time budget per voice (s)")
    ap.add_argument("--deep-steps", type=int, default=400, help="deep fit step limit per voice")
    ap.add_argument("--curve-every", type=int, default=25, help="judge the deep voice every this many steps")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the deep fit")
    args = ap.parse_args()

    ids = args.ids.split(",") if args.ids else pick_speakers(args.speakers)
    sexes = speakers_table()
    engine = KokoroEngine(Path("/tmp/vx-models"), runtime=args.runtime)
    engine.load()
    print(f"Kokoro runtime: {engine.runtime}")
    judge, dvec, transcriber, cloner = Judge(), SpeakerEncoder(), Transcriber(), InstantCloner()
    packs = stock_packs()

    held, refs, ceiling = {}, {}, {}
    for sid in ids:
        audio, sr = clip(sid)
        cut = int(len(audio) * REF_FRACTION)
        refs[sid] = (audio[:cut], sr)
        held[sid] = (audio[cut:], sr)
        ceiling[sid] = float(judge.embed(audio[:cut], sr) @ judge.embed(audio[cut:], sr))
    held_ge2e = {sid: judge.embed(*held[sid]) for sid in ids}
    held_dvec = {sid: dvec.embed(*held[sid]) for sid in ids}

    # Stock voices: each pack's speech once; the nearest pack per speaker is an oracle (best by GE2E).
    stock = {}
    for name, table in packs.items():
        pieces, _, _ = speak(engine, table, FilterChain())
        stock[name] = {"ge2e": judge.embed(np.concatenate(pieces), SAMPLE_RATE)}

    model = None
    if args.tier == "deep":
        import torch

        from voxclone.engines.kokoro_deep.model import load

        torch.set_num_threads(args.threads)
        model = load(engine.model_file())
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_dir = ROOT / "bench" / "out"
    rows, clone_ge2e, deep_ge2e = [], {}, {}
    for sid in ids:
        audio, sr = refs[sid]
        t0 = time.perf_counter()
        job = CloneJob.direct(
            engine,
            [Reference(audio, sr)],
            dvec,
            transcriber,
            budget_s=args.budget,
            workdir=Path(tempfile.mkdtemp()),
            seed=args.seed,
        )
        result = cloner.clone(job)
        enrol_s = time.perf_counter() - t0
        style, chain = np.load(io.BytesIO(result.files["style.npy"])), build_chain(result.filters)
        pieces, _, post_rtf = speak(engine, style, chain)
        out = np.concatenate(pieces)
        e = judge.embed(out, SAMPLE_RATE)
        clone_ge2e[sid] = e
        nearest = max(packs, key=lambda n: float(stock[n]["ge2e"] @ held_ge2e[sid]))
        rtf_stock, rtf_clone = paired_rtf(engine, packs[nearest], style, chain)
        rows.append(
            {
                "speaker": sid,
                "sex": sexes.get(sid, "?"),
                "ref_s": round(len(audio) / sr, 1),
                "ge2e_clone": float(e @ held_ge2e[sid]),
                "ge2e_stock": float(stock[nearest]["ge2e"] @ held_ge2e[sid]),
                "nearest_stock": nearest,
                "ge2e_ceiling": ceiling[sid],
                "dvec_clone": float(dvec.embed(out, SAMPLE_RATE) @ held_dvec[sid]),
                "wer": wer_of(pieces, transcriber),
                "enrol_s": enrol_s,
                "rtf_stock": rtf_stock,
                "rtf_clone": rtf_clone,
                "rtf_post": post_rtf,
                "optimiser": result.scores,
            }
        )
        print(
            f"{sid}: ge2e {rows[-1]['ge2e_clone']:.3f} (stock {rows[-1]['ge2e_stock']:.3f}) wer {rows[-1]['wer']:.3f} enrol {enrol_s:.0f}s",
            flush=True,
        )
        if model is not None:
            fields, deep_ge2e[sid], deep_chain = deep_tier(
                engine,
                model,
                judge,
                held_ge2e[sid],
                refs[sid],
                result,
                out_dir / f"deep-{stamp}" / sid,
                args,
                dvec,
                transcriber,
            )
            spec = deep_spec(out_dir / f"deep-{stamp}" / sid / "deep.npz", 20_000)
            fields["rtf_deep"] = min(speak_voice(engine, spec, deep_chain)[1] for _ in range(2))
            # An upper bound on the fit's memory: this process also holds the judge, Whisper and the engine.
            fields["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows[-1].update(fields)
            served = "deep" if fields["accepted"] else "instant"
            print(
                f"{sid}: deep ge2e {fields['ge2e_deep']:.3f} wer {fields['wer_deep']:.3f} wall {fields['deep_wall_s']:.0f}s "
                f"({fields['deep_steps']} steps), accepted: {fields['accepted']} -> serves {served}",
                flush=True,
            )
        # A long deep run keeps what it has measured if it is stopped: each speaker's row as it is done.
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = out_dir / f"clone_quality-{stamp}.partial.json"
        embeddings = {
            sid: {"held": held_ge2e[sid].tolist(), "clone": clone_ge2e[sid].tolist()}
            | ({"deep": deep_ge2e[sid].tolist()} if sid in deep_ge2e else {})
            for sid in clone_ge2e
        }
        partial.write_text(json.dumps({"args": vars(args), "rows": rows, "embeddings": embeddings}, default=float))

    for row in rows:
        sims = {s: float(clone_ge2e[row["speaker"]] @ held_ge2e[s]) for s in ids}
        row["identified"] = max(sims, key=sims.__getitem__) == row["speaker"]
        if row["speaker"] in deep_ge2e:
            sims = {s: float(deep_ge2e[row["speaker"]] @ held_ge2e[s]) for s in ids}
            row["identified_deep"] = max(sims, key=sims.__getitem__) == row["speaker"]
            row["ge2e_served"] = row["ge2e_deep"] if row["accepted"] else row["ge2e_clone"]

    cols = [
        "speaker",
        "sex",
        "ref_s",
        "ge2e_clone",
        "ge2e_stock",
        "ge2e_ceiling",
        "dvec_clone",
        "identified",
        "wer",
        "enrol_s",
        "rtf_stock",
        "rtf_clone",
        "rtf_post",
    ]
    if model is not None:
        cols += [
            "ge2e_deep",
            "identified_deep",
            "wer_deep",
            "deep_wall_s",
            "deep_steps",
            "accepted",
            "ge2e_served",
            "rtf_deep",
        ]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols) + " |")
    means = {
        c: float(np.mean([r[c] for r in rows]))
        for c in cols
        if isinstance(rows[0][c], int | float) and not isinstance(rows[0][c], bool)
    }
    counts = {c: sum(bool(r[c]) for r in rows) for c in cols if isinstance(rows[0][c], bool)}
    n_id = counts["identified"]
    print(
        "| mean | | "
        + " | ".join(f"{means[c]:.3f}" if c in means else f"{counts[c]}/{len(rows)}" for c in cols[2:])
        + " |"
    )

    if model is not None:
        for column in ("ge2e_deep", "ge2e_served"):
            gain = float(np.mean([r[column] - r["ge2e_clone"] for r in rows]))
            print(f"{column} - ge2e_clone: {gain:+.3f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"clone_quality-{stamp}.json"
    path.write_text(
        json.dumps(
            {"args": vars(args), "rows": rows, "means": means, "identified": n_id, "counts": counts},
            indent=1,
            default=float,
        )
    )
    print(f"wrote {path}")
    if model is not None:
        plot_curves(rows, path.with_suffix(".png"))
        print(f"wrote {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
