"""The low-dimensional space the clone search moves in, built from Kokoro's five stock packs.

A point is (timbre logits over the 5 packs, prosody logits over the 5 packs, k principal-direction
coefficients on the timbre half). Style rows are 256 numbers: the first 128 drive the decoder
(timbre), the last 128 the duration/pitch predictor, so mixing the halves separately lets a male
pack's pitch meet a female pack's vocal colour. Staying inside mixtures of real packs, plus a few
bounded principal directions, keeps the voice intelligible: free 128-d offsets over-fitted in
RESEARCH.md (objective up, judge down, WER 0.26).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HALF = 128
N_DIRECTIONS = 8
MAX_COEF = 1.5  # principal-direction coefficients are clipped to +-1.5 standard deviations


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def principal_directions(tables: np.ndarray, half: slice, k: int) -> np.ndarray:
    """(k, 128): the main ways the rows of every pack differ in one half, each scaled by its standard deviation."""
    rows = tables[:, ::4, half].reshape(-1, HALF)
    _, s, vt = np.linalg.svd(rows - rows.mean(axis=0), full_matrices=False)
    return (vt[:k] * (s[:k] / np.sqrt(len(rows) - 1))[:, None]).astype(np.float32)


@dataclass(frozen=True)
class StyleSpace:
    """Maps a search vector to a (510, 256) style table."""

    names: tuple[str, ...]
    tables: np.ndarray  # (packs, 510, 256)
    directions: np.ndarray  # (N_DIRECTIONS, 128) unit vectors times their standard deviation

    @classmethod
    def from_packs(cls, packs: dict[str, np.ndarray]) -> StyleSpace:
        names = tuple(sorted(packs))
        tables = np.stack([packs[n] for n in names]).astype(np.float32)
        # Principal directions of the timbre half: the ways real Kokoro timbres differ, beyond the
        # 4 dimensions the mixture weights already span.
        return cls(names, tables, principal_directions(tables, slice(0, HALF), N_DIRECTIONS))

    @property
    def n_packs(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return 2 * self.n_packs + len(self.directions)

    def point(self, timbre: np.ndarray, prosody: np.ndarray, coefs: np.ndarray | None = None) -> np.ndarray:
        """A search vector from explicit pack weights (log taken, so weights of 0 get logit -8)."""
        t = np.log(np.maximum(np.asarray(timbre, np.float64), np.exp(-8.0)))
        p = np.log(np.maximum(np.asarray(prosody, np.float64), np.exp(-8.0)))
        c = np.zeros(len(self.directions)) if coefs is None else np.asarray(coefs, np.float64)
        return np.concatenate([t, p, c])

    def weights(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_packs
        return softmax(x[:n]), softmax(x[n : 2 * n]), np.clip(x[2 * n :], -MAX_COEF, MAX_COEF)

    def table(self, x: np.ndarray) -> np.ndarray:
        """The (510, 256) float32 style table for search vector x."""
        wt, wp, c = self.weights(x)
        timbre = np.tensordot(wt, self.tables[:, :, :HALF], axes=1) + c @ self.directions
        prosody = np.tensordot(wp, self.tables[:, :, HALF:], axes=1)
        return np.concatenate([timbre, prosody], axis=1).astype(np.float32)
