"""The reference on Kokoro's own timeline: phonemes, frames per phoneme, and the speaker's F0.

To fit the decoder to a recording, the decoder must be fed what would have produced that recording:
the transcript's phonemes held for as long as the speaker held them, and the speaker's pitch. The
model speaks the transcript once with the starting voice, paced to the recording's length; dynamic
time warping of the two (MFCCs, each normalised per utterance, so the path follows what is said and
not who says it) maps each phoneme's frames onto the recording's. F0 comes from the recording
(WORLD Harvest) at the decoder's F0 rate, 0 where unvoiced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld
import soxr
import torch
from scipy.fft import dct

from .model import F0_HOP, SAMPLE_RATE, SAMPLES_PER_FRAME, KokoroTorch

MAX_IDS = 510 - 2
_MFCC_HOP = F0_HOP  # 12.5 ms: two alignment frames per duration frame
_N_FFT = 1024
_N_MFCC = 20


@dataclass
class Utterance:
    """One stretch of reference speech laid on Kokoro's timeline."""

    ids: list[int]  # phoneme ids, without the start/end tokens
    frames: np.ndarray  # (len(ids) + 2,) int64 duration frames per token, summing to n_frames
    f0: np.ndarray  # (2 * n_frames,) float32 Hz, 0 where unvoiced
    audio: np.ndarray  # (n_frames * SAMPLES_PER_FRAME,) float32 at 24 kHz
    cutoff_hz: float  # the recording says nothing above this (half its original sample rate, less a margin)

    @property
    def n_frames(self) -> int:
        return int(self.frames.sum())


def _mfcc(audio: np.ndarray) -> np.ndarray:
    """(frames, 20) MFCCs (without c0) at 12.5 ms, mean/variance normalised over the utterance."""
    from ...embedding import mel_filterbank

    pad = _N_FFT // 2
    x = np.pad(audio.astype(np.float32), (pad, pad))
    n = 1 + (len(x) - _N_FFT) // _MFCC_HOP
    idx = np.arange(_N_FFT)[None, :] + _MFCC_HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(_N_FFT).astype(np.float32), axis=1)) ** 2
    mel = np.log(spec @ mel_filterbank(SAMPLE_RATE, _N_FFT, 40).T + 1e-8)
    c = dct(mel, type=2, norm="ortho", axis=1)[:, 1 : _N_MFCC + 1]
    return (c - c.mean(axis=0)) / (c.std(axis=0) + 1e-5)


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of `a`, the first row of `b` matched to it on the cheapest monotonic path (steps 1/1, 1/0, 0/1).

    Each row of the cost table is a min-plus scan, done with a cumulative minimum: row i's cost at j is
    C_j + min over k <= j of (best of row i-1 at k-1..k, minus C_{k-1}), C the running sum of row i's costs.
    """
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).astype(np.float64)
    n, m = cost.shape
    acc = np.empty_like(cost)
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        prev = acc[i - 1]
        best = np.minimum(prev, np.concatenate([[np.inf], prev[:-1]]))  # from above or the diagonal
        run = np.cumsum(cost[i])
        shifted = np.concatenate([[0.0], run[:-1]])
        acc[i] = run + np.minimum.accumulate(best - shifted)
    first = np.empty(n, np.int64)  # backtrack from the end, keeping the first b-row each a-row reaches
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        first[i] = j
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            steps = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
            k = int(np.argmin(steps))
            i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
    first[0] = 0
    return first


def _frames_from_path(synth_frames: np.ndarray, path: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-token duration frames on the reference from the synthesis's frames per token and the DTW path;
    every token keeps at least one frame, and they sum to n_frames."""
    starts = np.concatenate([[0], np.cumsum(synth_frames)[:-1]]) * 2  # in 12.5 ms alignment frames
    mapped = np.round(path[np.minimum(starts, len(path) - 1)] / 2).astype(np.int64)
    t = len(synth_frames)
    bounds = np.zeros(t, np.int64)
    for k in range(1, t):
        bounds[k] = min(max(mapped[k], bounds[k - 1] + 1), n_frames - (t - k))
    return np.diff(np.append(bounds, n_frames))


def reference_f0(audio24: np.ndarray, n_frames: int) -> np.ndarray:
    """(2 * n_frames,) F0 in Hz at the decoder's rate (12.5 ms), 0 where unvoiced (WORLD Harvest at 16 kHz)."""
    x = soxr.resample(audio24.astype(np.float64), SAMPLE_RATE, 16_000)
    f0, _ = pyworld.harvest(x, 16_000, f0_floor=60.0, f0_ceil=500.0, frame_period=1000.0 * F0_HOP / SAMPLE_RATE)
    f0 = np.pad(f0, (0, max(0, 2 * n_frames - len(f0))))[: 2 * n_frames]
    return f0.astype(np.float32)


def align(
    model: KokoroTorch, ids: list[int], style_row: np.ndarray, audio24: np.ndarray, source_rate: int
) -> Utterance:
    """Lay one reference utterance (24 kHz) with its phoneme ids onto Kokoro's timeline."""
    ids = ids[:MAX_IDS]
    n_frames = max(len(ids) + 2, round(len(audio24) / SAMPLES_PER_FRAME))
    audio = np.pad(audio24, (0, max(0, n_frames * SAMPLES_PER_FRAME - len(audio24))))[: n_frames * SAMPLES_PER_FRAME]
    style = torch.from_numpy(np.asarray(style_row, np.float32))
    with torch.no_grad():
        predicted = model.text_features(ids, style).durations
        speed = float(predicted.sum()) / n_frames  # paced to the recording, so the path stays near the diagonal
        synth, frames = model.synthesize(ids, style, speed=max(0.25, min(4.0, speed)))
    path = dtw_path(_mfcc(synth.numpy()), _mfcc(audio))
    ref_frames = _frames_from_path(frames.numpy(), path, n_frames)
    return Utterance(
        ids=list(ids),
        frames=ref_frames,
        f0=reference_f0(audio, n_frames),
        audio=audio.astype(np.float32),
        cutoff_hz=0.47 * min(source_rate, SAMPLE_RATE),
    )
