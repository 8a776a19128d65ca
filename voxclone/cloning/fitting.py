"""Fitting a voice's filters (filters/spectral.py) to a speaker: equaliser gains and the shape mapping.

Engine-independent: both compare statistics of the engine's speech with the reference's
(voxclone.spectrum), so any cloner can give its voice the speaker's spectral colour and shape.
"""

from __future__ import annotations

import numpy as np

from ..filters import FilterChain
from ..filters.spectral import MAX_GAIN_DB, Equaliser, ShapeMapping
from ..spectrum import VoiceStats, shape_frames

EQ_STRENGTH = 1.0  # measured 0.6/1.0/1.3: 1.0 best (+0.06 GE2E mean over 4 speakers)
# Covariances of spectral shape are shrunk this far toward their diagonals before the shape transform
# is made: 0.1 lost 0.003 GE2E against none, and keeps bands that a short reference hardly moves sane.
SHAPE_SHRINK = 0.1


def eq_gains(target: VoiceStats, current: VoiceStats, strength: float = EQ_STRENGTH) -> np.ndarray:
    """Band gains (dB) moving `current`'s average spectrum toward `target`'s, level-neutral and smooth."""
    diff_db = (10.0 / np.log(10.0)) * (target.ltas - current.ltas)
    diff_db = np.convolve(np.pad(diff_db, 1, mode="edge"), np.ones(3) / 3, mode="valid")  # no narrow notches
    diff_db -= diff_db.mean()  # colour only; loudness is normalised elsewhere
    return np.clip(strength * diff_db, -MAX_GAIN_DB, MAX_GAIN_DB)


def _covariance(frames: np.ndarray) -> np.ndarray:
    cov = np.cov(frames)
    return (1 - SHAPE_SHRINK) * cov + SHAPE_SHRINK * np.diag(np.diag(cov))


def _matrix_power(cov: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 1e-4 * max(float(values.max()), 1e-12))  # a flat direction is not inverted to infinity
    return (vectors * values**power) @ vectors.T


def shape_transform(voice: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """(bands, bands) matrix giving `voice`'s shape frames (bands, frames) the covariance of `reference`'s.

    Whitening by the voice's covariance and colouring by the reference's: the classic linear mapping
    of one speaker's spectra onto another's. None when either side has too few frames to say.
    """
    if min(voice.shape[1], reference.shape[1]) < 4 * len(voice):
        return None
    return _matrix_power(_covariance(reference), 0.5) @ _matrix_power(_covariance(voice), -0.5)


def fitted_chain(
    gains_db: np.ndarray, measured: list[np.ndarray], rate: int, reference_shapes: np.ndarray
) -> FilterChain:
    """Shape mapping (measured on `measured` speech at `rate`; left out when there are too few frames
    to estimate it) then an equaliser with `gains_db`: the chain a cloned voice speaks through."""
    voice = shape_frames(measured, rate)
    transform = shape_transform(voice, reference_shapes)
    equaliser = Equaliser(gains_db)
    if transform is None:
        return FilterChain([equaliser])
    return FilterChain([ShapeMapping(voice.mean(axis=1), transform), equaliser])
