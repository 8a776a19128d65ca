"""Everything one voxclone process runs with, built once from the settings: the composition root.

The HTTP app and every CLI command build a `Runtime` and use its parts; nothing else constructs
engines, the library, the cache, the worker pool or the services, so they are wired in one place.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from . import models
from .audit import AuditLog
from .blobs import open_blobs
from .cache import AudioCache
from .cloning import Cloners, build_cloners
from .consent import Consents
from .database import Database
from .engines import Engines, RemoteEngine, build_engines
from .enrolment import Enroller
from .errors import VoxcloneError
from .jobs import JobQueue
from .listeners import Listeners
from .metrics import Metrics
from .provenance import Provenance
from .realtime import Sessions
from .remote_voices import RemoteVoices
from .revoice import Revoicer
from .settings import Settings
from .speech import SpeechService
from .timestamps import TimedSpeech
from .transcription import TranscriptionService
from .voice_files import VoiceFiles
from .voices import VoiceLibrary, install_voices
from .workers import WorkerPool, default_workers

log = logging.getLogger("voxclone.runtime")


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
        try:
            blobs = open_blobs(settings, self.database)
            self.library = VoiceLibrary(self.database, blobs, settings.max_voices)
            install_voices(self.library, self.engines, settings.extra_voice_paths)
        except BaseException:  # a bad bucket or voice file stops the start: let go of the database first
            self.database.close()
            raise
        self.cache = AudioCache(settings.cache_dir, settings.cache_size_bytes)
        self.metrics = Metrics()
        self.workers = WorkerPool(
            settings.synthesis_workers or useful_workers(self.engines), settings.queue_size, name="voxclone-synth"
        )
        self.audit = AuditLog(self.database, legacy_file=settings.audit_path)
        self.provenance = Provenance(settings.data_dir, self.library, self.audit)
        self.speech = SpeechService(
            settings,
            self.engines,
            self.library,
            self.cache,
            self.workers,
            self.metrics,
            provenance=self.provenance if settings.watermark else None,
        )
        self.listeners = parts.listeners or Listeners(settings)
        self.transcription = TranscriptionService(settings, self.listeners)
        self.timed = TimedSpeech(self.speech, self.transcription)
        self.revoicer = Revoicer(self.speech, self.transcription)
        self.realtime = Sessions(settings, self.speech, self.transcription)
        self.consents = Consents(settings, self.database, self.listeners, self.audit)
        self.jobs = JobQueue(self.database, settings.job_lease_s)
        self.cloners = parts.cloners or build_cloners(settings)
        self.enroller = Enroller(
            settings,
            self.library,
            self.jobs,
            self.engines,
            self.cloners,
            self.workers,
            self.cache,
            self.listeners,
            consents=self.consents,
            audit=self.audit,
        )
        self.remote_voices = RemoteVoices(self.library, self.engines)
        self.enroller.installed.append(self.remote_voices.claimed)
        self.voice_files = VoiceFiles(self.library, self.engines)
        self._tasks: list[asyncio.Task[None]] = []

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
        """Begin background work: enrolments left by a stopped process resume; stray voice files go; remote
        engines' voice lists are refreshed."""
        self.library.sweep_orphans()
        self.enroller.start(loop)
        if loop is not None:  # upstream voice lists (ElevenLabs'), refreshed in the background
            self._tasks += [loop.create_task(self.remote_voices.run(name)) for name in self.remote_voices.listing()]
        if self.settings.allow_downloads:
            threading.Thread(target=self._pull_missing, name="voxclone-pull", daemon=True).start()
        if loop is not None and self.settings.model_idle_ttl_s > 0:
            self._tasks.append(loop.create_task(self._unload_idle(self.settings.model_idle_ttl_s)))

    def _pull_missing(self) -> None:
        """With --allow-downloads: fetch the weights of every engine that lacks them, one after another.
        Files this release pins no digest for are trusted and their digests recorded, as `--unverified`."""
        for name in self.engines.all_names():
            if self.engines.availability(name).state != "missing_weights":
                continue
            for spec in self.engines[name].weights:
                log.info("downloading the %s model for the %s engine (--allow-downloads)", spec.name, name)
                try:
                    models.pull(self.settings, spec.name, unverified=True)
                except VoxcloneError as e:
                    log.warning("could not download %s: %s", spec.name, e)
        install_voices(self.library, self.engines, self.settings.extra_voice_paths)  # stock voices that came with them

    async def _unload_idle(self, idle_s: float) -> None:
        """Free models (GPU memory) that no request used for `idle_s`; they load again when next needed."""
        while True:
            await asyncio.sleep(max(0.5, idle_s / 4))
            for name, engine in self.engines.items():
                if await asyncio.to_thread(engine.unload_if_idle, idle_s):
                    log.info("unloaded the %s model (idle for %.0f s)", name, idle_s)

    async def stop(self) -> None:
        """End background work and close remote engines' connections on this event loop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for engine in self.engines.values():
            if isinstance(engine, RemoteEngine):
                await engine.aclose()

    def close(self) -> None:
        self.enroller.shutdown()
        self.workers.shutdown()
        self.transcription.close()
        self.cache.close()
        self.database.close()
