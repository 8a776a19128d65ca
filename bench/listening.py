"""Shared pieces of the listening benches: known sentences, a runtime, and timing helpers."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from voxclone.runtime import Runtime
from voxclone.settings import Settings

T = TypeVar("T")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech_train-clean-100"
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet at the station at half past seven tomorrow morning.",
    "She sells sea shells by the sea shore on a bright summer day.",
    "A journey of a thousand miles begins with a single step.",
    "The weather forecast says it will rain in the afternoon, so take an umbrella.",
    "My grandmother planted roses, tulips and daffodils in her garden last spring.",
    "Could you tell me the way to the nearest library, please?",
    "The children laughed as the puppy chased its own tail around the yard.",
    "After the concert, we walked home under a sky full of stars.",
]


def runtime(**overrides: object) -> Runtime:
    """A runtime on a fresh data folder (models come from the shared model cache)."""
    return Runtime(Settings(data_dir=Path(tempfile.mkdtemp(prefix="voxclone-bench-")), preload=False, **overrides))  # type: ignore[arg-type]


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
