"""Everything one voxclone process runs with, built once from the settings: the composition root.

The HTTP app and every CLI command build a `Runtime` and use its parts; nothing else constructs
engines, the library, the cache, the worker pool or the services, so they are wired in one place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .blobs import open_blobs
from .cache import AudioCache
from .cloning import Cloners, build_cloners
from .database import Database
from .engines import Engines, build_engines
from .enrolment import Enroller
from .errors import VoxcloneError
from .jobs import JobQueue
from .listeners import Listeners
from .metrics import Metrics
from .realtime import Sessions
from .revoice import Revoicer
from .settings import Settings
from .speech import SpeechService
from .timestamps import TimedSpeech
from .transcription import TranscriptionService
from .voices import VoiceLibrary, install_voices
from .workers import WorkerPool, default_workers


def useful_workers(engines: Engines) -> int:
    """Synthesis threads worth running: one per core, or fewer where an engine runs calls one at a time."""
    limits = [e.concurrent_calls for e in engines.values() if e.concurrent_calls and e.availability().ready]
    return min([default_workers(), *limits])


@dataclass
class Parts:
    """Ready-made parts a caller (a test, a benchmark) shares between runtimes instead of building anew."""

    engines: Engines | None = None
    cloners: Cloners | None = None
    listeners: Listeners | None = None


class Runtime:
    """Engines, library, cache, workers, speech and enrolment of one process."""

    def __init__(self, settings: Settings, parts: Parts | None = None) -> None:
        parts = parts or Parts()
        self.settings = settings
        self.engines = parts.engines or build_engines(settings)
        self.database = Database(settings.db_url)
        blobs = open_blobs(self.database, settings.voices_dir, settings.voice_files_dir)
        self.library = VoiceLibrary(self.database, blobs, settings.max_voices)
        try:
            install_voices(self.library, self.engines, settings.extra_voice_paths)
        except BaseException:  # a bad voice file stops the start: let go of the database first
            self.database.close()
            raise
        self.cache = AudioCache(settings.cache_dir, settings.cache_size_bytes)
        self.metrics = Metrics()
        self.workers = WorkerPool(settings.synthesis_workers or useful_workers(self.engines), settings.queue_size, name="voxclone-synth")
        self.speech = SpeechService(settings, self.engines, self.library, self.cache, self.workers, self.metrics)
        self.listeners = parts.listeners or Listeners(settings)
        self.transcription = TranscriptionService(settings, self.listeners)
        self.timed = TimedSpeech(self.speech, self.transcription)
        self.revoicer = Revoicer(self.speech, self.transcription)
        self.realtime = Sessions(settings, self.speech, self.transcription)
        self.jobs = JobQueue(self.database, settings.job_lease_s)
        self.cloners = parts.cloners or build_cloners(settings)
        self.enroller = Enroller(
            settings, self.library, self.jobs, self.engines, self.cloners, self.workers, self.cache, self.listeners
        )

    def load(self) -> None:
        """Load every usable engine's models now (start-up) rather than on first use. Blocking."""
        for name in self.engines:
            if self.engines.availability(name).ready:
                self.engines[name].load()

    def health_voice_engine(self) -> str | None:
        """The engine of the default voice (what /health waits for), or None if that voice is missing."""
        try:
            return self.library.get(self.settings.default_voice).engine
        except VoxcloneError:
            return None

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Begin background work: enrolments left by a stopped process resume; stray voice files go."""
        self.library.sweep_orphans()
        self.enroller.start(loop)

    def close(self) -> None:
        self.enroller.shutdown()
        self.workers.shutdown()
        self.transcription.close()
        self.cache.close()
        self.database.close()
