"""Never worse: a deep voice replaces the instant clone only if it is closer to the speaker and as intelligible.

Both voices speak the same probe sentences through the product's own engine (the deep one through its
adapted session, exactly as it will be served; the instant one through its filters). The deep
voice is accepted when
- its fit's held-out loss (the reference's tail it never trained on) fell below the starting voice's;
- the voicefilter d-vector finds its probe speech at least as close to the reference as the instant
  clone's (sentences neither voice was fitted on);
- Whisper's word error rate on the probes is within MAX_WER_RISE of the instant clone's.
GE2E (resemblyzer) is the benchmark's judge and is never used here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...asr import Transcriber, normalise_words, word_error_rate
from ...audio import ANALYSIS_RATE
from ...embedding import SpeakerEncoder, normalise
from ...filters import build_chain
from ..kokoro import KokoroEngine
from ..kokoro_clone import CHECK_PROBE, SEARCH_PROBES

PROBES = (*SEARCH_PROBES, CHECK_PROBE)
MAX_WER_RISE = 0.02


@dataclass
class Verdict:
    accepted: bool
    reason: str
    scores: dict[str, float]
    filters: list[dict[str, Any]] = field(default_factory=list)  # the chain the deep voice speaks through


def probe_scores(
    speak: Callable[[str], np.ndarray],
    rate: int,
    encoder: SpeakerEncoder,
    transcriber: Transcriber,
    reference: np.ndarray,
) -> tuple[float, float]:
    """(d-vector similarity of the probes to the reference embedding, word error rate over the probes)."""
    pieces = [speak(text) for text in PROBES]
    similarity = float(encoder.embed(np.concatenate(pieces), rate) @ reference)
    words = sum(len(normalise_words(t)) for t in PROBES)
    errors = sum(
        word_error_rate(t, transcriber.transcribe(p, rate)) * len(normalise_words(t))
        for t, p in zip(PROBES, pieces, strict=True)
    )
    return similarity, errors / words


def judge(
    speak_instant: Callable[[str], np.ndarray],
    speak_deep: Callable[[str], np.ndarray],
    rate: int,
    references16k: list[np.ndarray],
    held_out_start: float,
    held_out_best: float,
    encoder: SpeakerEncoder,
    transcriber: Transcriber,
) -> Verdict:
    """Compare the two voices; `speak_*` turn a sentence into audio at `rate` as the voice is served."""
    reference = normalise(np.mean([encoder.embed(a, ANALYSIS_RATE) for a in references16k], axis=0))
    sim_instant, wer_instant = probe_scores(speak_instant, rate, encoder, transcriber, reference)
    sim_deep, wer_deep = probe_scores(speak_deep, rate, encoder, transcriber, reference)
    scores = {
        "held_out_loss_start": round(held_out_start, 4),
        "held_out_loss_deep": round(held_out_best, 4),
        "similarity_instant": round(sim_instant, 4),
        "similarity_deep": round(sim_deep, 4),
        "wer_instant": round(wer_instant, 4),
        "wer_deep": round(wer_deep, 4),
    }
    if not held_out_best < held_out_start:
        return Verdict(False, "the fit did not lower the held-out loss", scores)
    if sim_deep < sim_instant:
        return Verdict(False, "the deep voice is not closer to the speaker than the instant clone", scores)
    if wer_deep > wer_instant + MAX_WER_RISE:
        return Verdict(False, f"the deep voice is less intelligible (WER {wer_deep:.3f} vs {wer_instant:.3f})", scores)
    return Verdict(True, "closer to the speaker and as intelligible", scores)


def speaker_of_instant(
    engine: KokoroEngine, style: np.ndarray, filters: list[dict[str, Any]], rate: int
) -> Callable[[str], np.ndarray]:
    """How the instant clone speaks a sentence (engine.synthesize_style, then its filters)."""
    chain = build_chain(filters)
    return lambda text: chain.apply(engine.synthesize_style(text, style), rate)
