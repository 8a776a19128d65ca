"""Voice cloning for Kokoro: find the style table (and cheap post-processing) that sounds like a speaker.

`clone_voice` takes a few recordings of one speaker and returns a `CloneResult`; `apply_post` is run
on every piece synthesised with the cloned voice. See search.py for the algorithm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BadAudio
from .analysis import ANALYSIS_RATE, to_analysis_rate
from .embedding import SpeakerEncoder, shared_encoder
from .post import apply_post
from .search import MAX_CHECK_WER, Candidate, CloneSearch
from .space import StyleSpace

if TYPE_CHECKING:
    from ..engines.kokoro import KokoroEngine

__all__ = ["CloneResult", "Reference", "SpeakerEncoder", "apply_post", "clone_voice", "shared_encoder"]

MIN_SECONDS = 3.0
_CHECKED = 3  # best search candidates re-scored on held-out evidence


@dataclass
class Reference:
    """One recording of the speaker to clone."""

    audio: np.ndarray  # float32 mono, already decoded, silence-trimmed, loudness-normalised
    sample_rate: int
    transcript: str | None = None


@dataclass
class CloneResult:
    """The cloned voice: a Kokoro style table, post-processing params, and how well it matched."""

    style: np.ndarray  # (510, 256) float32 Kokoro style table
    post: dict  # JSON-serialisable post-processing params ({} if none)
    scores: dict[str, float] = field(default_factory=dict)


def _validated(references: list[Reference]) -> list[np.ndarray]:
    if not references:
        raise BadAudio("cloning needs at least one reference recording")
    out = []
    for i, ref in enumerate(references):
        audio = np.asarray(ref.audio, np.float32)
        if audio.ndim != 1 or ref.sample_rate < 8000:
            raise BadAudio(
                f"reference {i + 1}: expected mono audio at >= 8 kHz, got shape {audio.shape} at {ref.sample_rate} Hz"
            )
        if not np.isfinite(audio).all():
            raise BadAudio(f"reference {i + 1}: audio contains NaN or infinite samples")
        if len(audio) and float(np.sqrt(np.mean(audio**2))) > 1e-4:
            out.append(to_analysis_rate(audio, ref.sample_rate))
    seconds = sum(len(a) for a in out) / ANALYSIS_RATE
    if seconds < MIN_SECONDS:
        raise BadAudio(
            f"references hold {seconds:.1f} s of audible speech; cloning needs at least {MIN_SECONDS:.0f} s (20-30 s is best)"
        )
    return out


def _pick(
    search: CloneSearch, ranked: list[Candidate], progress: Callable[[float, str], None]
) -> tuple[Candidate, Candidate]:
    """(chosen, best stock pack), both re-scored on held-out evidence; broken speech is never chosen."""
    n = search.space.n_packs
    packs = search.evaluated[:n]
    best_pack = max(packs, key=lambda c: c.score)
    pool: list[Candidate] = []
    for c in ranked:
        if len(pool) >= _CHECKED:
            break
        if all(np.abs(c.x - p.x).max() > 1e-6 for p in pool) and np.abs(c.x - best_pack.x).max() > 1e-6:
            pool.append(c)
    checked = []
    for i, c in enumerate([best_pack, *pool]):
        progress(0.85 + 0.14 * i / (len(pool) + 1), "checking the best candidates on unseen speech")
        checked.append(search.check(c))
    baseline = checked[0]
    usable = [c for c in checked if c.info["wer"] <= MAX_CHECK_WER] or [min(checked, key=lambda c: c.info["wer"])]
    return max(usable, key=lambda c: c.score), baseline


def clone_voice(
    engine: KokoroEngine,
    references: list[Reference],
    progress: Callable[[float, str], None] | None = None,
    time_budget_s: float = 90.0,
    seed: int = 0,
) -> CloneResult:
    """Clone the speaker heard in `references` into a Kokoro style table plus post-processing (post.py).

    Deterministic for a given seed as long as the search finishes inside `time_budget_s` (the budget
    only cuts the search short on a slow machine). Safe to call from a worker thread.
    """
    report = progress or (lambda fraction, message: None)
    started = time.monotonic()
    audio16k = _validated(references)
    report(0.01, "analysing the reference")
    engine.load()
    from ..engines.kokoro import stock_packs

    space = StyleSpace.from_packs(stock_packs())
    search = CloneSearch(engine, shared_encoder(), space, audio16k, seed=seed)
    # The search gets ~80 % of the budget; checking the finalists takes the rest.
    ranked = search.run(started + 0.8 * time_budget_s, lambda f, m: report(0.02 + 0.83 * f, m))
    chosen, baseline = _pick(search, ranked, report)
    report(0.99, "matching the speaker's spectral shape")
    post, similarity = search.finish(chosen)
    report(1.0, "done")
    scores = {
        "similarity": round(similarity, 4),
        "baseline_similarity": round(baseline.similarity, 4),
        "wer": round(chosen.info["wer"], 4),
        "f0_reference": round(search.stats.f0_median, 1),
        "f0_clone": round(chosen.f0, 1),
        "candidates": float(len(search.evaluated)),
        "shape_mapped": float("shape" in post),
        "seconds": round(time.monotonic() - started, 2),
    }
    return CloneResult(style=space.table(chosen.x), post=post, scores=scores)
