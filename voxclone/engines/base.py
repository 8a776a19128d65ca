"""The one small interface every speech engine implements."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class VoiceSpec:
    """What an engine needs to speak in one voice: its parameters and the folder its files live in."""

    key: str  # changes whenever the voice's sound changes (id + version), so engines can cache by it
    params: dict[str, Any]
    files_dir: Path | None = None


@dataclass(frozen=True)
class StockVoice:
    """A voice an engine offers out of the box."""

    name: str
    params: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""


class Engine(ABC):
    """Text piece + voice -> float32 mono audio at `sample_rate`.

    `load` is idempotent and thread-safe; `synthesize` may be called from several threads at once.
    Callers split text into pieces first (voxclone.text.split); an engine speaks one piece per call.
    """

    name: str
    sample_rate: int
    # Calls that usefully run at once; None: one per core. An engine that runs calls one after another
    # says 1, so the worker pool does not interleave two calls and delay both.
    concurrent_calls: int | None = None

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        """Load models once per process."""
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def stock_voices(self) -> list[StockVoice]: ...

    @abstractmethod
    def check_voice(self, params: dict[str, Any], files_dir: Path | None) -> None:
        """Raise BadInput if these parameters cannot make a voice (missing file, bad shape...)."""

    @abstractmethod
    def synthesize(self, text: str, voice: VoiceSpec, speed: float = 1.0) -> np.ndarray:
        """Speak one piece of text; returns float32 samples in [-1, 1]."""


def onnx_session(
    path: Path | str, threads: int, *, spin: bool = True, initializers: dict[str, ort.OrtValue] | None = None
) -> ort.InferenceSession:
    """An onnxruntime CPU session with all graph optimisations and a bounded thread count.

    `spin=False` where another runtime computes right after this session on the same cores: the idle
    threads would otherwise busy-wait through the other's work. `initializers` replace the graph's
    float weights of those names (a deep-cloned voice's own); the caller keeps them alive as long as
    the session.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns are planned and cached per distinct input shape, each served as one large block
    # from the arena, and text gives a new shape almost every request. Measured over 2,000 requests:
    # RSS crept up 12 % with them, 5 % without, at no measurable speed cost (bench/memory.py,
    # bench/rtf.py). The CPU arena stays on: without it RSS nearly doubled (glibc heaps fragment).
    options.enable_mem_pattern = False
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name, value in (initializers or {}).items():
        options.add_initializer(name, value)
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def trim_silence(audio: np.ndarray, sample_rate: int, threshold: float = 0.01, pad_s: float = 0.04) -> np.ndarray:
    """Cut leading and trailing near-silence, keeping a short pad so words are not clipped."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    pad = int(pad_s * sample_rate)
    return audio[max(0, loud[0] - pad) : loud[-1] + pad]
