"""Post-processing applied to every synthesised piece of a cloned voice: a static equaliser.

The equaliser moves the synthetic voice's long-term average spectrum toward the reference speaker's
(vocal-tract colour, microphone brightness). It is one linear-phase FIR filter applied by FFT
convolution, so it costs well under 1 % of synthesis time and keeps the length exactly.
`post` params are JSON: {"eq_db": [N_BANDS gains in dB at analysis.band_centres()]}; {} means untouched.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import oaconvolve

from .analysis import band_centres

_TAPS = 511
MAX_GAIN_DB = 12.0


@lru_cache(maxsize=64)
def _fir(gains_db: tuple[float, ...], sample_rate: int) -> np.ndarray:
    # Frequency sampling: interpolate the band gains on a log-frequency axis (flat outside the
    # bands), build a zero-phase response and window it to a short linear-phase filter.
    freqs = np.fft.rfftfreq(_TAPS * 2 - 2, 1 / sample_rate)
    centres = np.log(band_centres())
    gains = np.interp(np.log(np.maximum(freqs, 1.0)), centres, np.asarray(gains_db))
    # Above the analysed range fade toward 0 dB: uploads at 16 kHz say nothing about 8-12 kHz.
    top = band_centres()[-1]
    fade = np.clip((freqs - top) / (1.5 * top - top), 0.0, 1.0)
    gains = gains * (1 - fade)
    impulse = np.fft.irfft(10 ** (gains / 20.0))
    impulse = np.roll(impulse, _TAPS // 2)[:_TAPS] * np.hanning(_TAPS)
    return impulse.astype(np.float32)


def equalise(audio: np.ndarray, sample_rate: int, gains_db: list[float] | np.ndarray) -> np.ndarray:
    """Apply the band gains as one linear-phase FIR; output has the input's length, peak kept below 1."""
    if len(audio) == 0:
        return audio
    g = tuple(float(v) for v in np.clip(gains_db, -MAX_GAIN_DB, MAX_GAIN_DB))
    h = _fir(g, sample_rate)
    y = oaconvolve(np.asarray(audio, np.float32), h, mode="full")[_TAPS // 2 : _TAPS // 2 + len(audio)]
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:  # the filter may boost a band past full scale; scale rather than clip
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def apply_post(audio: np.ndarray, sample_rate: int, post: dict) -> np.ndarray:
    """Apply a cloned voice's post-processing; `{}` returns the audio unchanged."""
    if not post:
        return audio
    out = audio
    if "eq_db" in post:
        out = equalise(out, sample_rate, post["eq_db"])
    return out
