"""The engine contract: what every speech engine is, says about itself, and gives back.

An engine turns one piece of text, in one voice, into typed audio chunks (`AudioChunk`, each with its
own sample rate and the text it speaks). It says what it can do (`Capabilities`), whether it can run
here (`Availability`, with the command that fixes it when it cannot), which voices it offers out of
the box, and how to make a voice from a model file on disk. Engines are found through the
`voxclone.engines` entry points (engines/registry.py); nothing outside an engine's own module knows
which engines exist.

Local engines compute on a worker thread (`synthesize`, blocking). A `RemoteEngine` speaks over the
network (`astream`, async), so it never holds a worker thread for the length of a network call.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:
    from ..settings import Settings
    from ..weights import ModelSpec


@dataclass(frozen=True)
class WordTiming:
    """A word and when it is heard, in seconds from the start of its chunk."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class AudioChunk:
    """Audio an engine made: float32 mono samples in [-1, 1] at `sample_rate`, speaking `text`."""

    samples: np.ndarray
    sample_rate: int
    text: str
    words: tuple[WordTiming, ...] = ()  # empty where the engine does not know its timings

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


@dataclass(frozen=True)
class VoiceSpec:
    """What an engine needs to speak in one voice: its own parameters and the folder its files live in.

    `params` is the engine's JSON, checked by `Engine.check_voice` when the voice is made; relative
    file names in it are relative to `files_dir`.
    """

    id: str
    version: int  # changes whenever the voice's sound changes, so engines may cache by `key`
    params: Mapping[str, Any]
    files_dir: Path | None = None

    @property
    def key(self) -> str:
        return f"{self.id}:{self.version}"

    def path(self, name: str) -> Path:
        """A file named in `params`, resolved against the voice's folder."""
        path = Path(name)
        if not path.is_absolute() and self.files_dir is not None:
            path = self.files_dir / path
        return path


@dataclass(frozen=True)
class SpeakOptions:
    """Per-call options. `seed` makes engines that draw random numbers give the same audio every time."""

    speed: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class StockVoice:
    """A voice an engine offers out of the box."""

    name: str
    params: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, for clients (GET /v1/models) and for the core's choices."""

    languages: tuple[str, ...] = ("en",)
    max_piece_chars: int = 220  # longest piece of text it speaks well in one call (its context)
    streaming: bool = False  # yields a piece's audio in several chunks as it is made
    word_timings: bool = False  # fills AudioChunk.words
    cloning_tiers: tuple[str, ...] = ()  # tiers of voxclone.cloning it has cloners for
    voice_files: tuple[str, ...] = ()  # suffixes of model files it makes voices from


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here; when it cannot, why and the command that fixes it."""

    state: Literal["ready", "missing_weights", "disabled"]
    detail: str = ""
    fix: str | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def message(self, engine: str) -> str:
        text = f"the {engine} engine is {self.state.replace('_', ' ')}" + (f": {self.detail}" if self.detail else "")
        return f"{text}; fix: {self.fix}" if self.fix else text


READY = Availability("ready")


class Engine(ABC):
    """Text piece + voice -> audio chunks. One instance per process, shared by every request.

    `load` is idempotent and thread-safe; `synthesize` may be called from several threads at once.
    Callers split text into pieces first (voxclone.text.split); an engine speaks one piece per call.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""  # its name as people write it, for pages and lists (default: `name`)
    capabilities: ClassVar[Capabilities] = Capabilities()
    weights: ClassVar[tuple[ModelSpec, ...]] = ()  # downloadable weights it needs (`voxclone models pull`)

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """The engine as configured; cheap (models load in `load`)."""

    @property
    def concurrent_calls(self) -> int | None:
        """Calls that usefully run at once; None: one per core. An engine that runs its calls one after
        another says 1, so the worker pool does not interleave two calls and delay both."""
        return None

    def availability(self) -> Availability:
        return READY

    def load(self) -> None:
        """Load models once per process."""
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _load(self) -> None:  # noqa: B027 (engines with nothing to load keep this)
        """Load the engine's models (called once, under a lock)."""

    def unload_if_idle(self, idle_s: float) -> bool:
        """Free the models if no call used them for `idle_s` seconds (GPU memory); True if it did."""
        return False

    @abstractmethod
    def stock_voices(self) -> list[StockVoice]: ...

    @abstractmethod
    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        """Raise BadInput if these parameters cannot make a voice (missing file, bad shape...)."""

    def voice_from_file(self, path: Path) -> dict[str, Any] | None:
        """The params of a voice made from this model file, or None if this engine does not read it."""
        return None

    @abstractmethod
    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        """Speak one piece of text. Blocking: called on a worker thread."""


class RemoteEngine(Engine):
    """An engine on the other end of a network connection: it speaks asynchronously, on the event loop."""

    @abstractmethod
    def astream(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> AsyncIterator[AudioChunk]:
        """Speak one piece of text as chunks arrive from the network."""

    def synthesize(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> Iterator[AudioChunk]:
        raise TypeError(f"{self.name} is a remote engine: call astream on the event loop")

    # Seconds between refreshes of `remote_voices`; None: the engine offers no voices of its own upstream.
    voices_refresh_s: float | None = None

    async def remote_voices(self) -> list[StockVoice]:
        """The voices the upstream offers now (an account's voices), listed in the library as `remote`."""
        return []

    async def aclose(self) -> None:
        """Close connections opened on the running event loop."""


def speech_bounds(audio: np.ndarray, sample_rate: int, threshold: float = 0.01, pad_s: float = 0.04) -> tuple[int, int]:
    """Where speech starts and ends (samples), past leading and trailing near-silence, with a short pad."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return 0, 0
    pad = int(pad_s * sample_rate)
    return max(0, int(loud[0]) - pad), min(audio.size, int(loud[-1]) + pad)


def trim_silence(audio: np.ndarray, sample_rate: int, threshold: float = 0.01, pad_s: float = 0.04) -> np.ndarray:
    """Cut leading and trailing near-silence, keeping a short pad so words are not clipped."""
    start, end = speech_bounds(audio, sample_rate, threshold, pad_s)
    return audio[start:end]
