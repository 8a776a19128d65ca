"""An inaudible, robust mark in speech, and the test that finds it again (numpy and scipy, no model).

The mark is spread spectrum in the short-time spectrum: every 16 ms, each 31.25 Hz band between
125 Hz and 7.5 kHz is made `strength_db` (1.25 dB) louder or quieter, following a keyed pseudo-random
pattern of ±1 chips that repeats every block (64 hops, 1.024 s). The change is relative to what is
already there, so it hides under the speech itself (and there is none in silence). Three quarters
of the bands carry a pattern every voxclone shares (the sync pattern: "this is voxclone speech");
the rest carry a message: the product of three keyed sequences, for the installation, the voice and
the day the audio was made.

Detection resamples to 16 kHz, takes each band's log power per hop, removes the part that is smooth
across neighbouring hops and bands (mostly the speech itself), scales what is left by its local
spread, and weights each tile by the share of its power that is the speech rather than added noise (a
band's noise power comes from its quietest hops), so that under noise the tiles where speech stands out
carry the decision. It folds the blocks of a window onto one, removes each band's mean over the block
(no chip's), and correlates the result with the sync pattern at every alignment, in windows of about
3 s (the pieces of one clip were marked separately, so each may sit at its own alignment) and over the
whole file. Given the audio, the correlation with a random pattern is standard normal, so a score has
a known false-positive rate, which `threshold` corrects for the number of alignments and windows tried
(Bonferroni).

What it survives: anything that keeps frequencies and timing: codecs down to opus at 24 kbps,
resampling to 8 kHz, gain, excerpts, white noise at 20 dB SNR (and mostly at 15 dB; bench/watermark.py
has the figures). It is not meant to survive a change of speed or pitch, or someone who knows the
pattern and removes it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.special import ndtr, ndtri

from .audio import ANALYSIS_RATE, resample

# Per file: the chance unmarked audio is called marked, all alignments and windows counted. The
# chances `Reading.false_positive_chance` states hold (3,608 unmarked clips, real and generated, clean
# and under noise, read with four other keys: 0.94 % under 1 %, 0.08 % under 0.1 %), but at one in
# 1,000 a check of 251 clips through a dozen transformations, each allowed one false alarm (0.5 %),
# would still fail by chance about one time in four; at one in 10,000 almost never.
FALSE_POSITIVE_TARGET = 1e-4


@dataclass(frozen=True)
class Scheme:
    """The mark's parameters. Marks made with one scheme are found only by the same scheme."""

    key: str = "voxclone-watermark-1"
    strength_db: float = 1.25  # each chip makes its band this much louder or quieter
    frame_s: float = 0.032  # analysis window; the hop (one chip in time) is half of it
    low_hz: float = 125.0
    high_hz: float = 7500.0
    band_hz: float = 31.25  # one chip per band per hop: the bin width of a 32 ms frame
    period: int = 64  # hops per block: the pattern repeats every 1.024 s
    message_share: float = 0.25  # share of the bands that carry the message
    window_blocks: int = 3  # detection windows of this many blocks (about 3 s), one block apart
    detrend_hops: int = 3  # the smooth part removed before correlating: a moving mean over this many hops...
    detrend_bands: int = 3  # ...and bands (speech's level is smooth in both; the chips are not)
    local_hops: int = 5  # residuals are scaled by their spread over this many hops...
    local_bands: int = 5  # ...and bands, so busy passages (onsets) do not drown steady ones
    phases: int = 2  # sub-hop alignments tried at detection (8 ms apart)
    floor_percentile: float = 10.0  # a band's noise power: from this percentile of its power over the file

    @property
    def n_bands(self) -> int:
        return round((self.high_hz - self.low_hz) / self.band_hz)

    def _rng(self, *parts: str) -> np.random.Generator:
        seed = hashlib.sha256("\x1f".join((self.key, *parts)).encode()).digest()
        return np.random.default_rng(int.from_bytes(seed[:16], "little"))

    @cached_property
    def message_bands(self) -> np.ndarray:
        """Which bands carry the message (sorted band indices); the others carry the sync pattern."""
        count = round(self.n_bands * self.message_share)
        return np.sort(self._rng("message-bands").choice(self.n_bands, size=count, replace=False))

    @cached_property
    def sync(self) -> np.ndarray:
        """(period, n_bands) sync chips: ±1 on sync bands, 0 on message bands."""
        chips = self._rng("sync").choice(np.array([-1.0, 1.0], np.float32), size=(self.period, self.n_bands))
        chips[:, self.message_bands] = 0.0
        return chips

    @property
    def message_length(self) -> int:
        return self.period * len(self.message_bands)

    def sequence(self, *parts: str) -> np.ndarray:
        """A keyed ±1 sequence of the message's length: one per installation, voice or day."""
        return self._rng("message", *parts).choice(np.array([-1.0, 1.0], np.float32), size=self.message_length)


DEFAULT = Scheme()


# Short-time spectra ---------------------------------------------------------------------------------


def _window(n: int) -> np.ndarray:
    # Periodic sqrt-Hann: analysis times synthesis is a Hann window, which sums to a constant at half overlap.
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _frame_length(scheme: Scheme, rate: int) -> int:
    n = round(scheme.frame_s * rate)
    return n + n % 2


def _starts(scheme: Scheme, rate: int, length: int) -> np.ndarray:
    """Where each frame starts: frame k is centred on k hops (in seconds, rounded to a sample), so the
    chip grid is the same at every sample rate, even where a hop is not a whole number of samples."""
    hop = scheme.frame_s / 2 * rate
    count = math.ceil(length / hop) + 2
    return np.round((np.arange(count) - 1) * hop).astype(np.int64)


def _band_of_bins(scheme: Scheme, n: int, rate: int) -> np.ndarray:
    """Each FFT bin's band (the nearest band centre), -1 outside the marked range."""
    freqs = np.fft.rfftfreq(n, 1 / rate)
    bands = np.round((freqs - scheme.low_hz) / scheme.band_hz).astype(np.int64)
    bands[(bands < 0) | (bands >= scheme.n_bands)] = -1
    return bands


def embed(samples: np.ndarray, rate: int, codeword: np.ndarray | None = None, scheme: Scheme = DEFAULT) -> np.ndarray:
    """`samples` with the sync pattern and (if given) a message codeword marked in; same length and rate.

    The chip grid starts at the first sample: a piece is marked on its own, whatever comes before it.
    """
    x = np.asarray(samples, np.float32)
    n = _frame_length(scheme, rate)
    if x.size == 0 or rate < 2 * scheme.low_hz * 4:
        return x.copy()
    starts = _starts(scheme, rate, x.size)
    window = _window(n)
    padded = np.concatenate([np.zeros(n, np.float32), x, np.zeros(2 * n, np.float32)])
    index = (starts + n)[:, None] + np.arange(n)[None, :]
    spectra = np.fft.rfft(padded[index] * window, axis=1)
    chips = scheme.sync.copy()
    if codeword is not None:
        chips[:, scheme.message_bands] = np.asarray(codeword, np.float32).reshape(scheme.period, -1)
    bands = _band_of_bins(scheme, n, rate)
    rows = chips[np.arange(len(starts)) % scheme.period]
    gains_db = np.where(bands >= 0, rows[:, np.clip(bands, 0, None)], 0.0) * scheme.strength_db
    frames = np.fft.irfft(spectra * np.power(10.0, gains_db / 20.0), n=n, axis=1).astype(np.float32) * window
    out = np.zeros(padded.size, np.float32)
    norm = np.zeros(padded.size, np.float32)
    squared = window**2
    for start, frame in zip(starts + n, frames, strict=True):
        out[start : start + n] += frame
        norm[start : start + n] += squared
    return (out[n : n + x.size] / np.maximum(norm[n : n + x.size], 1e-3)).astype(np.float32)


# Detection ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What detection found: the best sync score `z`, how many alignments were tried, and the message's
    soft chips at the best alignment (length `scheme.message_length`, zero where nothing was heard)."""

    z: float
    tests: int
    message: np.ndarray = field(repr=False)
    seconds: float = 0.0

    @property
    def threshold(self) -> float:
        return threshold(self.tests)

    @property
    def watermarked(self) -> bool:
        return self.z >= self.threshold

    @property
    def false_positive_chance(self) -> float:
        """The chance that unmarked audio scores this high somewhere (Bonferroni over the tests)."""
        return float(min(1.0, self.tests * ndtr(-self.z)))

    def match(self, codewords: np.ndarray) -> np.ndarray:
        """The score of each candidate codeword (rows) against the message: standard normal for a wrong one."""
        norm = float(np.linalg.norm(self.message))
        if norm == 0.0:
            return np.zeros(len(codewords), np.float32)
        return (np.asarray(codewords, np.float32) @ self.message) / norm


def threshold(tests: int) -> float:
    """The score unmarked audio exceeds with chance FALSE_POSITIVE_TARGET after `tests` tries."""
    return float(-ndtri(FALSE_POSITIVE_TARGET / max(1, tests)))


def _residuals(scheme: Scheme, audio16k: np.ndarray) -> np.ndarray:
    """(hops, bands) log band power minus its slow part, zero where nothing is heard; frames on the chip grid."""
    n = _frame_length(scheme, ANALYSIS_RATE)
    hop = n // 2
    if audio16k.size < n:
        audio16k = np.pad(audio16k, (0, n - audio16k.size))
    padded = np.concatenate([np.zeros(hop, np.float32), audio16k, np.zeros(n, np.float32)])
    count = 1 + (padded.size - n) // hop
    index = np.arange(count)[:, None] * hop + np.arange(n)[None, :]
    power = np.abs(np.fft.rfft(padded[index] * _window(n), axis=1)) ** 2
    bands = _band_of_bins(scheme, n, ANALYSIS_RATE)
    members = (bands[:, None] == np.arange(scheme.n_bands)[None, :]).astype(np.float64)
    return _residuals_from_power(scheme, power @ members, power.sum(axis=1))


def _residuals_from_power(scheme: Scheme, band_power: np.ndarray, frame_power: np.ndarray) -> np.ndarray:
    level = 10 * np.log10(band_power + 1e-10)
    frame_level = 10 * np.log10(frame_power + 1e-10)
    residual = level - uniform_filter(level, (scheme.detrend_hops, scheme.detrend_bands), mode="nearest")
    heard = (frame_level > np.percentile(frame_level, 95) - 35)[:, None] & (
        level > level.max(axis=1, keepdims=True) - 50
    )
    if not heard.any():
        return np.zeros_like(residual)
    spread = float(np.std(residual[heard])) + 1e-9
    residual = np.where(heard, np.clip(residual, -3 * spread, 3 * spread), 0.0)
    local = uniform_filter(residual**2, (scheme.local_hops, scheme.local_bands), mode="constant")
    residual = np.where(heard, residual / np.sqrt(local + 0.05 * spread**2), 0.0)
    return residual * _marked_share(scheme, band_power) ** 2


def _marked_share(scheme: Scheme, band_power: np.ndarray) -> np.ndarray:
    """(hops, bands) the share of each tile's power that is the marked audio rather than added noise.

    A band's noise power is estimated from its quietest hops: in a band that holds only noise at some
    time, a single bin's power is exponentially distributed, so its q-quantile is -ln(1 - q) times the
    mean. Where a tile's power (smoothed over its neighbours) is all noise, the share is 0. The mark
    moves a tile's level in proportion to the share, and the noise that replaced it is what its level
    varies with instead, so a tile's residual is weighted by the share squared, as a matched filter
    weights by signal over noise power. In clean audio the floor is near silence and every share is 1.
    """
    q = scheme.floor_percentile / 100
    noise = np.percentile(band_power, scheme.floor_percentile, axis=0, keepdims=True) / -math.log1p(-q)
    power = uniform_filter(band_power, 3, mode="nearest")
    return np.clip(1.0 - noise / np.maximum(power, 1e-12), 0.0, 1.0)


def read(samples: np.ndarray, rate: int, scheme: Scheme = DEFAULT) -> Reading:
    """Look for the mark in audio at any rate (any length; 3 s or more to be sure)."""
    x = resample(np.asarray(samples, np.float32), rate, ANALYSIS_RATE)
    hop = _frame_length(scheme, ANALYSIS_RATE) // 2
    period, sync = scheme.period, scheme.sync
    sync_bands = np.setdiff1d(np.arange(scheme.n_bands), scheme.message_bands)
    sync_spectrum = np.fft.rfft(sync, axis=0)
    best = (-np.inf, 0, 0, np.zeros((period, scheme.n_bands)))  # z, phase, offset, folded window
    tests = 0
    for phase in range(scheme.phases):
        residual = _residuals(scheme, x[phase * hop // scheme.phases :])
        blocks = -(-len(residual) // period)
        padded = np.zeros((blocks * period, scheme.n_bands))
        padded[: len(residual)] = residual
        folded = padded.reshape(blocks, period, scheme.n_bands)  # each block's hops, on the grid of the first
        spans = [(0, blocks)] + (
            [(i, i + scheme.window_blocks) for i in range(blocks - scheme.window_blocks + 1)]
            if blocks > scheme.window_blocks
            else []
        )
        for first, last in spans:
            window = folded[first:last].sum(axis=0)
            # A band's mean over the block is no chip's: left in, it meets the pattern's sum over that
            # band at every alignment alike and shifts all of this window's scores by one unknown amount.
            window -= window.mean(axis=0, keepdims=True)
            norm = float(np.sqrt((window[:, sync_bands] ** 2).sum()))
            tests += period
            if norm == 0.0:
                continue
            # score[o] = sum over hops j and bands of window[j] * sync[(j + o) % period]: one circular
            # cross-correlation per band, all alignments at once.
            scores = (
                np.fft.irfft(np.conj(np.fft.rfft(window, axis=0)) * sync_spectrum, n=period, axis=0).sum(axis=1) / norm
            )
            offset = int(np.argmax(scores))
            if scores[offset] > best[0]:
                best = (float(scores[offset]), phase, offset, window)
    z, _, offset, window = best
    message = window[(np.arange(period) - offset) % period][:, scheme.message_bands].reshape(-1)
    return Reading(
        z=float(z) if np.isfinite(z) else 0.0,
        tests=max(tests, 1),
        message=message.astype(np.float32),
        seconds=x.size / ANALYSIS_RATE,
    )
