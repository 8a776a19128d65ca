"""One deep fit from a job folder to a judged voice: align, fit, write the artefact, check it is better.

`fit_voice` is the in-process core (the benchmark calls it directly); `run_job` wraps it for the job
process: niced, bounded threads, progress in progress.json, failures reported rather than raised.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ...asr import TranscribeOptions, Transcriber
from ...audio import ANALYSIS_RATE, resample
from ...embedding import SpeakerEncoder
from ..base import SpeakOptions, VoiceSpec
from ..kokoro_adapted import DeepVoice, save
from .accept import Verdict, judge, speaker_of_instant
from .fit import DeepFit, FitOptions, FitProgress, FitResult
from .job import ARTEFACT_FILE, CHECKPOINT_FILE, PREPARED_FILE, RESULT_FILE, JobSpec, Reporter, write_json
from .model import HALF, SAMPLE_RATE

MAX_UTTERANCE_S = 20.0  # Kokoro speaks at most 510 phonemes at once: longer recordings are cut at Whisper's segments


@dataclass
class DeepOutcome:
    voice: DeepVoice
    fit: FitResult
    verdict: Verdict | None


def _pieces(audio24: np.ndarray, transcript: str | None, transcriber: Transcriber) -> list[tuple[np.ndarray, str]]:
    """(audio, text) utterances of one recording: the user's transcript when short enough, else Whisper's segments."""
    seconds = len(audio24) / SAMPLE_RATE
    if transcript and seconds <= MAX_UTTERANCE_S * 1.5:
        return [(audio24, transcript)]
    options = TranscribeOptions(language="en", vad=False)
    segments = [
        (s.start, s.end, s.text.strip()) for s in transcriber.segments(audio24, SAMPLE_RATE, options) if s.text.strip()
    ]
    out: list[tuple[np.ndarray, str]] = []
    start, texts, end = None, [], 0.0
    for s, e, text in segments:
        if start is not None and e - start > MAX_UTTERANCE_S:
            out.append((audio24[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)], " ".join(texts)))
            start, texts = None, []
        start = s if start is None else start
        texts.append(text)
        end = e
    if start is not None:
        out.append(
            (
                audio24[int(start * SAMPLE_RATE) : int(len(audio24) if end >= seconds - 0.5 else end * SAMPLE_RATE)],
                " ".join(texts),
            )
        )
    return [(a, t) for a, t in out if len(a) > SAMPLE_RATE and t]


def phoneme_ids(engine, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    """Kokoro's phoneme ids for `text` as one sequence (the engine's G2P chunks joined by a space)."""
    from .model import vocab

    table = vocab()
    return [table[c] for chunk in engine.phonemize(text) for c in f"{chunk.phonemes} " if c in table][:-1]


def prepare_utterances(  # type: ignore[no-untyped-def]
    engine, model, references: list[tuple[np.ndarray, int, str | None]], style: np.ndarray, transcriber: Transcriber
) -> list:
    """Align every reference (audio, rate, transcript or None) to Kokoro's timeline (align.Utterance list)."""
    from .align import align

    utterances = []
    for audio, rate, transcript in references:
        audio24 = (
            soxr.resample(np.asarray(audio, np.float32), rate, SAMPLE_RATE).astype(np.float32)
            if rate != SAMPLE_RATE
            else np.asarray(audio, np.float32)
        )
        for piece, text in _pieces(audio24, transcript, transcriber):
            ids = phoneme_ids(engine, text)
            if len(ids) >= 3:
                utterances.append(
                    align(model, ids, style[min(len(ids), len(style)) - 1], piece, min(rate, SAMPLE_RATE))
                )
    if not utterances:
        raise ValueError("no reference speech could be aligned to a transcript")
    return utterances


def _save_prepared(path: Path, utterances: list) -> None:
    arrays = {}
    for i, u in enumerate(utterances):
        arrays.update(
            {
                f"{i}/ids": np.array(u.ids),
                f"{i}/frames": u.frames,
                f"{i}/f0": u.f0,
                f"{i}/audio": u.audio,
                f"{i}/cutoff": np.array(u.cutoff_hz),
            }
        )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_prepared(path: Path) -> list:
    from .align import Utterance

    with np.load(path) as z:
        n = len({k.split("/")[0] for k in z.files})
        return [
            Utterance(
                list(map(int, z[f"{i}/ids"])), z[f"{i}/frames"], z[f"{i}/f0"], z[f"{i}/audio"], float(z[f"{i}/cutoff"])
            )
            for i in range(n)
        ]


def deep_voice(start_style: np.ndarray, fit: DeepFit, result: FitResult, meta: dict) -> DeepVoice:
    """The artefact: the style with the fitted timbre, and the fitted AdaIN biases as full values."""
    style = np.array(start_style, np.float32)
    style[:, :HALF] += result.timbre_delta
    initializers = {k: fit.start[k].cpu().numpy() + d for k, d in result.bias_deltas.items()}
    return DeepVoice(style, initializers, meta)


def fit_voice(
    engine,  # type: ignore[no-untyped-def]
    model,  # type: ignore[no-untyped-def]
    references: list[tuple[np.ndarray, int, str | None]],
    style: np.ndarray,
    filters: list[dict[str, Any]],
    out_dir: Path,
    encoder: SpeakerEncoder,
    transcriber: Transcriber,
    options: FitOptions | None = None,
    progress: Callable[[str, float, dict], None] | None = None,
    check: bool = True,
) -> DeepOutcome:
    """Align, fit (resuming from out_dir's checkpoint), save out_dir/deep.npz and judge it against the instant clone.

    `engine` is a loaded KokoroEngine (it phonemises, and speaks both voices for the check); `model` a
    deep.model.KokoroTorch, whose biases are put back as shipped afterwards.
    """
    report = progress or (lambda state, fraction, extra: None)
    prepared = out_dir / PREPARED_FILE
    report("aligning", 0.0, {"message": "aligning the reference to its transcript"})
    if prepared.exists():
        utterances = _load_prepared(prepared)
    else:
        utterances = prepare_utterances(engine, model, references, style, transcriber)
        _save_prepared(prepared, utterances)

    def on_step(p: FitProgress) -> None:
        extra = {
            "step": p.step,
            "held_out_loss": round(p.held_out_loss, 4),
            "eta_s": round(p.eta_s, 1),
            "message": "fitting",
        }
        report("fitting", 0.05 + 0.85 * p.fraction, extra)

    fit = DeepFit(model, utterances, style, options, checkpoint=out_dir / CHECKPOINT_FILE)
    try:
        result = fit.run(on_step)
    finally:
        fit.restore_start()
    meta = {
        "steps": result.steps,
        "best_step": result.best_step,
        "seconds": round(result.seconds, 1),
        "held_out_start": result.held_out_start,
        "held_out_best": result.held_out_best,
        "curve": result.curve,
    }
    voice = deep_voice(style, fit, result, meta)
    save(out_dir / ARTEFACT_FILE, voice)
    verdict = None
    if check:
        report("checking", 0.92, {"message": "comparing the deep voice with the instant clone"})
        spec = VoiceSpec(f"deep-check-{time.time_ns()}", 1, {"deep_file": str(out_dir / ARTEFACT_FILE)})
        references16k = [resample(np.asarray(a, np.float32), r, ANALYSIS_RATE) for a, r, _ in references]

        def speak_deep(text: str) -> np.ndarray:
            return np.concatenate([c.samples for c in engine.synthesize(text, spec, SpeakOptions())])

        verdict = judge(
            speaker_of_instant(engine, style, filters, engine.sample_rate),
            speak_deep,
            engine.sample_rate,
            references16k,
            result.held_out_start,
            result.held_out_best,
            encoder,
            transcriber,
        )
    return DeepOutcome(voice, result, verdict)


def _exit_with_parent() -> None:
    """End this process when the one that started it ends (killed, say), so no fit outlives its server;
    a restarted server resumes the job from its checkpoint."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2.0)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_job(job_dir: Path) -> int:
    """The job process's body (see job.py); returns the exit status."""
    _exit_with_parent()
    report = Reporter(job_dir)
    try:
        spec = JobSpec.read(job_dir)
        with contextlib.suppress(OSError):  # a fit must never slow the server's synthesis on a small machine
            if os.getpriority(os.PRIO_PROCESS, 0) < spec.nice:  # its starter may have niced it already
                os.setpriority(os.PRIO_PROCESS, 0, spec.nice)
        import torch

        torch.set_num_threads(max(1, spec.threads))
        from ..kokoro import KokoroEngine
        from .model import load

        engine = KokoroEngine(
            spec.model.parent, threads=spec.threads, runtime=spec.runtime, graph_cache_dir=spec.graph_cache
        )
        engine.load()
        model = load(spec.model)
        references = []
        for path, transcript in spec.references:
            audio, rate = sf.read(path, dtype="float32", always_2d=False)
            references.append((audio if audio.ndim == 1 else audio.mean(axis=1), rate, transcript))
        outcome = fit_voice(
            engine,
            model,
            references,
            spec.style,
            spec.filters,
            job_dir,
            SpeakerEncoder(),
            Transcriber(spec.threads),
            spec.options,
            lambda state, fraction, extra: report(state, fraction, **extra),
        )
        verdict = outcome.verdict
        assert verdict is not None
        write_json(
            job_dir / RESULT_FILE,
            {
                "accepted": verdict.accepted,
                "reason": verdict.reason,
                "scores": verdict.scores,
                "filters": verdict.filters,
                "fit": {k: v for k, v in outcome.voice.meta.items() if k != "curve"},
            },
        )
        report("done", 1.0, message=verdict.reason, accepted=verdict.accepted)
        return 0
    except Exception as e:  # reported to the server through progress.json, never lost in a dead process
        write_json(job_dir / RESULT_FILE, {"accepted": False, "reason": f"the deep fit failed: {e}", "scores": {}})
        report("failed", 1.0, message=f"{type(e).__name__}: {e}", trace=traceback.format_exc(limit=5))
        return 1
