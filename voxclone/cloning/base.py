"""The cloning contract: a cloner turns recordings of one speaker into a voice of one engine, at one tier.

A cloner declares the engine and the tier it makes voices for ("instant": a fast search; "deep": a
longer fit). It gets the references, a time budget, a progress callback, the engine and a way to run
engine calls through the same scheduler as speech, and returns what the voice needs as artefacts
(engine params, files, a filter chain, scores) that the library stores without knowing their format.

A refining tier (`Cloner.refines`) starts from what the voice speaks with (`CloneJob.current`, the
instant clone) and runs after it, so the voice speaks at once; its result replaces the current one only
when the cloner judges it better, and otherwise it raises `NotBetter` and the voice stays as it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np

from ..audio import resample
from ..errors import BadAudio, VoxcloneError

if TYPE_CHECKING:
    from ..asr import Transcriber
    from ..embedding import SpeakerEncoder
    from ..engines import Engine
    from ..settings import Settings

T = TypeVar("T")


class Progress(Protocol):
    """Reports how far a job is (0-1), what it is doing, and, when it can tell, the seconds left.

    Raises when the job must stop (its voice was deleted, or the process is shutting down): a cloner
    lets that propagate, after stopping any work of its own (a child process)."""

    def __call__(self, fraction: float, message: str, /, eta_s: float | None = None) -> None: ...


def no_progress(fraction: float, message: str, /, eta_s: float | None = None) -> None:
    """A Progress that reports nowhere (benchmarks, tests)."""


class NotBetter(Exception):
    """A refining tier's voice was judged no better than the current one, which the voice keeps."""

    def __init__(self, reason: str, scores: dict[str, float] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.scores = scores or {}


class CloneFailed(VoxcloneError):
    """A cloner's own work failed (a fit process that died, say); the message says why."""

    code = "clone_failed"


class EngineCalls(Protocol):
    """Runs one engine call on the speech worker pool, behind any speech waiting, and returns its result."""

    def __call__(self, fn: Callable[[], T]) -> T: ...


@dataclass(frozen=True)
class Reference:
    """One recording of the speaker: float32 mono, trimmed to speech and loudness-normalised."""

    audio: np.ndarray
    sample_rate: int
    transcript: str | None = None  # what is said, when the user gave it (else the cloner may transcribe)


@dataclass
class ClonedVoice:
    """A voice as a cloner made it. File names in `params` are relative to the voice's folder."""

    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    filters: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    engine: str | None = None  # the engine it speaks with, when not the cloner's (filters over another voice)


@dataclass
class CloneJob:
    """Everything one cloning run gets."""

    references: list[Reference]
    engine: Engine
    run: EngineCalls
    encoder: SpeakerEncoder
    transcriber: Transcriber
    budget_s: float
    min_speech_seconds: float
    progress: Progress
    workdir: Path  # the cloner's own folder: kept across restarts, for checkpoints
    current: ClonedVoice | None = None  # what the voice speaks with now, for tiers that refine it
    seed: int = 0
    voice_name: str = ""  # what the user called the voice (cloners that make it elsewhere name it so)

    @classmethod
    def direct(
        cls,
        engine: Engine,
        references: list[Reference],
        encoder: SpeakerEncoder,
        transcriber: Transcriber,
        *,
        budget_s: float,
        workdir: Path,
        min_speech_seconds: float = 3.0,
        progress: Progress | None = None,
        seed: int = 0,
    ) -> CloneJob:
        """A job whose engine calls run in place, for benchmarks and tests where no server is speaking."""
        return cls(
            references=references,
            engine=engine,
            run=lambda fn: fn(),
            encoder=encoder,
            transcriber=transcriber,
            budget_s=budget_s,
            min_speech_seconds=min_speech_seconds,
            progress=progress or no_progress,
            workdir=workdir,
            seed=seed,
        )

    def speech(self, rate: int, *, engine: str) -> np.ndarray:
        """Every reference at `rate`, end to end, for engines that condition on one stretch of speech;
        BadAudio if that is under a second."""
        audio = np.concatenate([resample(r.audio, r.sample_rate, rate) for r in self.references])
        if audio.size < rate:
            raise BadAudio(f"{engine} needs at least a second of speech to make a voice")
        return audio


class Cloner(ABC):
    """Makes voices of `engine` at `tier`. One instance per process: it may keep caches across jobs."""

    engine: ClassVar[str]
    tier: ClassVar[str]
    # A library voice the clones speak with, through the filters the cloner fits (OpenVoice's tone colour
    # over a Kokoro voice); None: the cloner makes voices of its own engine.
    base_voice: str | None = None
    refines: ClassVar[bool] = False  # starts from `job.current` and runs after the voice's instant clone
    # Files in `job.workdir` that hold the cloner's progress: copied where the job lives as they change, and
    # back into the folder of whichever worker runs the job next, on any machine (written atomically).
    checkpoints: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Cloner:
        return cls()

    @abstractmethod
    def clone(self, job: CloneJob) -> ClonedVoice:
        """Clone the speaker of `job.references`; blocking, on an enrolment thread. Raises BadAudio etc."""
