"""Write the tiny tone model the quick tests speak with: `python tests/make_tone_model.py OUT.tone.npz`.

A few KB: one frequency per character (letters, digits, apostrophe), 16 kHz, 60 ms per character.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

ALPHABET = string.ascii_lowercase + string.digits + "'"
SAMPLE_RATE = 16_000
SECONDS_PER_CHAR = 0.06


def write(out: Path | BinaryIO, sample_rate: int = SAMPLE_RATE, base_hz: float = 220.0) -> Path | BinaryIO:
    """Write the model to `out` (a path ending in .tone.npz, or a binary file) and return it."""
    frequencies = base_hz * 2 ** (np.arange(len(ALPHABET)) / 12)  # a semitone apart
    arrays = {
        "alphabet": np.array(ALPHABET),
        "frequencies": frequencies.astype(np.float32),
        "sample_rate": np.array(sample_rate),
        "seconds_per_char": np.array(SECONDS_PER_CHAR),
    }
    if isinstance(out, Path):
        with open(out, "wb") as f:
            np.savez(f, **arrays)
    else:
        np.savez(out, **arrays)
    return out


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))
