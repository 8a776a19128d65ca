"""Never worse: a deep voice replaces the instant clone only if it is closer to the speaker and as intelligible.

Both voices speak the same probe sentences through the product's own engine (the deep one through its
adapted session, exactly as it will be served; the instant one through its filters). The deep voice
gets filters of the instant clone's kind refitted to its own speech when they bring its probes closer to
the reference (the instant clone's own filters were fitted to another voice and hurt it). It is accepted
when
- its fit's held-out loss (the reference's tail it never trained on) fell below the starting voice's;
- the voicefilter d-vector finds its probe speech at least as close to the reference as the instant
  clone's (sentences neither voice's model was fitted on; both voices' filters are measured on them, as
  the instant clone's search measures its own);
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
from ...cloning.fitting import eq_gains, fitted_chain
from ...embedding import SpeakerEncoder, normalise
from ...filters import FilterChain, build_chain
from ...spectrum import shape_frames, voice_stats
from ..kokoro import KokoroEngine
from ..kokoro_clone import CHECK_PROBE, SEARCH_PROBES

# The WER rule must resolve single words: over the instant search's 38 probe words one word misheard is
# 0.026, more than the rise allowed, so a voice Whisper misheard once more was refused however much closer
# it was (one speaker's probes went from d-vector 0.728 to 0.883 for one word). These sentences bring the
# probes to 121 words: a rise of 0.02 is two words, and the d-vector hears three times the speech.
INTELLIGIBILITY_PROBES = (
    "Could you turn the music down a little while I finish this phone call?",
    "Seven thirsty children shared a jug of cold lemonade after the long walk.",
    "The museum opens at ten on weekdays, but the gift shop closes early.",
    "He forgot his umbrella again, so he waited under the bridge for the rain to stop.",
    "Our neighbours painted their fence bright yellow, which surprised everyone on the street.",
    "If you measure twice and cut once, the shelf will fit the wall perfectly.",
)
PROBES = (*SEARCH_PROBES, CHECK_PROBE, *INTELLIGIBILITY_PROBES)
MAX_WER_RISE = 0.02


@dataclass
class Verdict:
    accepted: bool
    reason: str
    scores: dict[str, float]
    filters: list[dict[str, Any]] = field(default_factory=list)  # the chain the deep voice speaks through


def probe_scores(
    pieces: list[np.ndarray], rate: int, encoder: SpeakerEncoder, transcriber: Transcriber, reference: np.ndarray
) -> tuple[float, float]:
    """(d-vector similarity of the probes' speech to the reference embedding, word error rate over the probes)."""
    similarity = float(encoder.embed(np.concatenate(pieces), rate) @ reference)
    words = sum(len(normalise_words(t)) for t in PROBES)
    errors = sum(
        word_error_rate(t, transcriber.transcribe(p, rate)) * len(normalise_words(t))
        for t, p in zip(PROBES, pieces, strict=True)
    )
    return similarity, errors / words


def refitted_chain(pieces: list[np.ndarray], rate: int, references16k: list[np.ndarray]) -> FilterChain:
    """The instant clone's kind of filters (shape mapping and equaliser, cloning/fitting.py), fitted anew to
    the deep voice's own speech: the instant clone's were fitted to a different voice."""
    target = voice_stats(references16k, ANALYSIS_RATE, robust=True)
    gains = eq_gains(target, voice_stats(pieces, rate))
    return fitted_chain(gains, pieces, rate, shape_frames(references16k, ANALYSIS_RATE))


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
    """Compare the two voices; `speak_*` turn a sentence into audio at `rate` as the voice is served (the
    instant clone through its filters, the deep one without any). The deep voice keeps filters refitted
    to it when the d-vector finds its probes closer to the speaker with them."""
    reference = normalise(np.mean([encoder.embed(a, ANALYSIS_RATE) for a in references16k], axis=0))
    sim_instant, wer_instant = probe_scores([speak_instant(t) for t in PROBES], rate, encoder, transcriber, reference)
    plain = [speak_deep(t) for t in PROBES]
    chain = refitted_chain(plain, rate, references16k)
    filtered = [chain.apply(p, rate) for p in plain]
    sim_plain = float(encoder.embed(np.concatenate(plain), rate) @ reference)
    sim_filtered = float(encoder.embed(np.concatenate(filtered), rate) @ reference)
    use_filters = sim_filtered > sim_plain
    sim_deep, wer_deep = probe_scores(filtered if use_filters else plain, rate, encoder, transcriber, reference)
    scores = {
        "held_out_loss_start": round(held_out_start, 4),
        "held_out_loss_deep": round(held_out_best, 4),
        "similarity_instant": round(sim_instant, 4),
        "similarity_deep": round(sim_deep, 4),
        "similarity_deep_unfiltered": round(sim_plain, 4),
        "wer_instant": round(wer_instant, 4),
        "wer_deep": round(wer_deep, 4),
    }
    filters = chain.specs() if use_filters else []
    if not held_out_best < held_out_start:
        return Verdict(False, "the fit did not lower the held-out loss", scores, filters)
    if sim_deep < sim_instant:
        return Verdict(False, "the deep voice is not closer to the speaker than the instant clone", scores, filters)
    if wer_deep > wer_instant + MAX_WER_RISE:
        return Verdict(
            False, f"the deep voice is less intelligible (WER {wer_deep:.3f} vs {wer_instant:.3f})", scores, filters
        )
    return Verdict(True, "closer to the speaker and as intelligible", scores, filters)


def speaker_of_instant(
    engine: KokoroEngine, style: np.ndarray, filters: list[dict[str, Any]], rate: int
) -> Callable[[str], np.ndarray]:
    """How the instant clone speaks a sentence (engine.synthesize_style, then its filters)."""
    chain = build_chain(filters)
    return lambda text: chain.apply(engine.synthesize_style(text, style), rate)
