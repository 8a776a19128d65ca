"""Voice enrolment: store a voice's samples, clone it off the request path, report progress.

Every enrolment is a job in the database (voxclone.jobs), run by a bounded pool of threads
(settings.enrolment_workers at once; with settings.enrolment_queue waiting, more are refused with
LimitExceeded rather than queued without bound). Samples are stored before a job is queued, so a
restart resumes every voice left `enrolling` from its own samples. Any process sharing the database
may run the job (settings.run_enrolments): each claims jobs for a lease it renews while it runs, so a
job whose worker died is taken over by another when its lease runs out. The cloner for the voice's engine
and tier (voxclone.cloning) does the work; its engine calls go through the speech worker pool, behind
any speech waiting, and what it returns is stored here without knowing its format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .cloning import ClonedVoice, CloneJob, Cloners
from .cloning.prepare import Sample, check_total, prepare
from .engines import Engines
from .errors import BadInput, LimitExceeded, VoiceNotFound, VoxcloneError
from .jobs import MAX_ATTEMPTS, Job, JobQueue, worker_id
from .samples import list_samples, load_references, sample_audio, store
from .settings import Settings
from .voices import Voice, VoiceLibrary, check_name
from .workers import WorkerPool

if TYPE_CHECKING:
    from .cache import AudioCache
    from .listeners import Listeners

log = logging.getLogger("voxclone.enrolment")
T = TypeVar("T")
_PROGRESS_EVERY_S = 0.5
DEFAULT_TIER = "instant"


@dataclass(frozen=True)
class Upload:
    """One uploaded file as the front ends hand it over."""

    file_name: str
    data: bytes
    transcript: str | None = None


class Cancelled(Exception):
    """The job was cancelled while it ran (its voice was deleted)."""


class Stopped(Exception):
    """The process is shutting down, or another worker took the job over: this worker lets it go."""


def parse_labels(raw: str | None) -> dict[str, str]:
    """ElevenLabs sends labels as a JSON object string; `key=value,key=value` is accepted too."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        pairs = [part.split("=", 1) for part in raw.split(",") if part.strip()]
        if not all(len(p) == 2 for p in pairs):
            raise BadInput('labels must be a JSON object like {"accent": "british"} or key=value pairs') from None
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict) or len(value) > 20:
        raise BadInput("labels must be an object of at most 20 entries")
    return {str(k)[:50]: str(v)[:100] for k, v in value.items()}


class Enroller:
    """Makes, refines, edits and deletes cloned voices, and keeps their library entries up to date."""

    def __init__(
        self,
        settings: Settings,
        library: VoiceLibrary,
        jobs: JobQueue,
        engines: Engines,
        cloners: Cloners,
        workers: WorkerPool,
        cache: AudioCache,
        listeners: Listeners,
    ) -> None:
        self.settings = settings
        self.library = library
        self.jobs = jobs
        self.engines = engines
        self.cloners = cloners
        self.workers = workers
        self.cache = cache
        self.listeners = listeners
        self._executor = ThreadPoolExecutor(settings.enrolment_workers, thread_name_prefix="voxclone-enrol")
        self._capacity = settings.enrolment_workers + settings.enrolment_queue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.worker = worker_id()
        self._busy = 0  # jobs this process is running
        self._keeper: threading.Thread | None = None

    # Starting and stopping ----------------------------------------------------------------------

    @property
    def runs_jobs(self) -> bool:
        return self.settings.run_enrolments

    def start(self, loop: asyncio.AbstractEventLoop | None, *, resume: bool = True) -> None:
        """Run jobs from now on (their engine calls scheduled on `loop`); with `resume`, also the ones a
        stopped process left, and those other processes queue (a server does; a one-off CLI command
        runs only its own and leaves the rest to the servers)."""
        self._loop = loop
        if not resume or not self.runs_jobs:
            return
        for voice in self.library.interrupted():
            if not list_samples(self.library.blobs, voice.id):
                self.library.update(voice.id, status="failed", error="enrolment was interrupted and no samples were stored; add the voice again")
                self.jobs.cancel_voice(voice.id)
            elif not any(j.status in ("queued", "running") for j in self.jobs.of_voice(voice.id)):
                self.jobs.submit(voice.id, voice.engine, voice.tier or DEFAULT_TIER)  # a voice from before jobs were recorded
        if self.jobs.requeue_dead():
            log.info("resuming enrolments a stopped process on this machine left running")
        self._keeper = threading.Thread(target=self._keep, name="voxclone-enrol-keeper", daemon=True)
        self._keeper.start()
        for _ in range(self.settings.enrolment_workers):
            self._kick()

    @property
    def running(self) -> bool:
        """Whether this process is claiming and running jobs now."""
        return self._keeper is not None and self._keeper.is_alive() and not self._stopping.is_set()

    def shutdown(self) -> None:
        """Stop: queued jobs wait for the next worker; running ones stop at their next progress report
        and go back to the queue."""
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _kick(self) -> None:
        """Let a thread claim and run jobs until none is left to claim."""
        if self.runs_jobs and not self._stopping.is_set():
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                self._executor.submit(self._run_claimed)

    def _keep(self) -> None:
        """While running: renew this worker's leases, look for jobs queued elsewhere (or left by dead
        workers), and fail jobs no worker will claim again."""
        every = min(self.settings.job_poll_s, self.jobs.lease_s / 3)
        while not self._stopping.wait(every):
            try:
                self.jobs.renew(self.worker)
                if self._busy < self.settings.enrolment_workers and self.jobs.has_claimable():
                    self._kick()
                for job in self.jobs.abandoned():
                    message = f"enrolment stopped with its worker {MAX_ATTEMPTS} times; add the voice again or try another tier"
                    if self.jobs.give_up(job, message):
                        self._fail(job.voice_id, message)
            except Exception:  # the database may be briefly unreachable: try again next time
                log.exception("enrolment keeper")

    # Voices -------------------------------------------------------------------------------------

    def _check_tier(self, engine: str, tier: str) -> None:
        self.cloners.get(engine, tier)  # BadInput naming what is installed

    def _prepare(self, uploads: list[Upload]) -> list[Sample]:
        if not uploads:
            raise BadInput("upload at least one audio file in `files`")
        return [prepare(u.data, u.file_name, max_seconds=self.settings.max_upload_seconds, transcript=u.transcript) for u in uploads]

    def _check_capacity(self) -> None:
        if self.jobs.active_count() >= self._capacity:
            raise LimitExceeded(
                f"{self._capacity} enrolments are already running or queued; try again in a minute",
                limit="enrolment_queue", retry_after=30,
            )

    def _submit(self, voice_id: str, engine: str, tier: str) -> None:
        with self._lock:
            self._check_capacity()  # again: another request may have taken the last place meanwhile
            self.jobs.submit(voice_id, engine, tier)
        self._kick()

    def add_voice(
        self, *, name: str, uploads: list[Upload], description: str = "", labels: dict[str, str] | None = None,
        engine: str | None = None, tier: str = DEFAULT_TIER,
    ) -> Voice:
        """Check and store the samples, create the voice as `enrolling`, and queue its cloning. Blocking."""
        engine = engine or self.settings.clone_engine
        self._check_tier(engine, tier)
        self._check_capacity()  # before decoding anything: a full queue is refused at once
        samples = self._prepare(uploads)
        check_total(samples, self.settings.min_speech_seconds)
        voice = self.library.create(
            name=check_name(name), engine=engine, params={}, category="cloned", labels=labels, description=description,
            status="enrolling",
        )
        try:
            for sample in samples:
                store(self.library.blobs, voice.id, sample)
            self._submit(voice.id, engine, tier)
        except OSError as e:  # disk full or similar: leave nothing half-made
            self.library.delete(voice.id)
            raise BadInput(f"could not store the samples: {e.strerror}") from e
        except BaseException:
            self.library.delete(voice.id)
            raise
        return self.library.get(voice.id)

    def edit(
        self, voice_id: str, *, name: str | None = None, description: str | None = None, labels: dict[str, str] | None = None,
        uploads: list[Upload] | None = None, tier: str = DEFAULT_TIER,
    ) -> Voice:
        """Rename or relabel a voice; new recordings re-enrol it with all of its samples. Blocking."""
        voice = self.library.get(voice_id)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if description is not None:
            changes["description"] = description
        if labels is not None:
            changes["labels"] = labels
        if uploads:
            self._check_samples_allowed(voice)
            self._check_tier(voice.engine, tier)
            self._check_capacity()
            samples = self._prepare(uploads)
            for sample in samples:
                store(self.library.blobs, voice.id, sample)
            self._submit(voice.id, voice.engine, tier)
            changes.update(status="enrolling", progress=0.0, error=None)
        return self.library.update(voice.id, **changes) if changes else voice

    def edit_settings(self, voice_id: str, changes: dict[str, Any]) -> Voice:
        """Change some of a voice's stored settings (its speed is the default for its requests)."""
        voice = self.library.get(voice_id)
        return self.library.update(voice.id, settings={**voice.settings, **changes})

    @staticmethod
    def _check_samples_allowed(voice: Voice) -> None:
        if voice.category != "cloned":
            raise BadInput(f"voice {voice.name!r} is a {voice.category} voice; only cloned voices take samples")
        if voice.status == "enrolling":
            raise BadInput(f"voice {voice.name!r} is still enrolling; add samples when it is ready")

    def delete(self, voice_id: str) -> Voice:
        """Delete a voice: its running enrolment stops, its files and cached audio go."""
        voice = self.library.get(voice_id)
        self.jobs.cancel_voice(voice.id)
        voice = self.library.delete(voice.id)
        self.cache.drop_voice(voice.id)
        return voice

    def samples(self, voice: Voice) -> list[dict[str, Any]]:
        """A voice's stored recordings: id, file name, seconds of speech (not their transcripts)."""
        if voice.category != "cloned":
            return []
        return [{k: s[k] for k in ("sample_id", "file_name", "duration_s")} for s in list_samples(self.library.blobs, voice.id)]

    def sample_file(self, voice_id: str, sample_id: str) -> bytes:
        """The WAV of one stored recording; VoiceNotFound if the voice has no such sample."""
        voice = self.library.get(voice_id)
        data = sample_audio(self.library.blobs, voice.id, sample_id)
        if data is None:
            raise VoiceNotFound(f"voice {voice.name!r} has no sample {sample_id[:40]!r}")
        return data

    # Running jobs -------------------------------------------------------------------------------

    def _engine_calls(self, fn: Callable[[], T]) -> T:
        """An engine call from a cloner: on the speech worker pool when a server is running."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return fn()
        return self.workers.call_from_thread(fn, loop)

    def _progress(self, job: Job, show_on_voice: bool) -> Callable[[float, str], None]:
        last = [0.0]

        def report(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] < _PROGRESS_EVERY_S:
                return
            last[0] = now
            if self._stopping.is_set():
                raise Stopped(job.id)
            fraction = round(min(max(fraction, 0.0), 0.99), 3)
            if not self.jobs.report(job.id, self.worker, fraction, message):
                raise Cancelled(job.id) if self.jobs.is_cancelled(job.id) else Stopped(job.id)
            if show_on_voice:
                self.library.update(job.voice_id, progress=fraction)

        return report

    def _run_claimed(self) -> None:
        """Claim jobs (this process's, other processes', dead workers') and run them, one at a time."""
        while not self._stopping.is_set():
            job = self.jobs.claim_next(self.worker)
            if job is None:
                return
            with self._lock:
                self._busy += 1
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._busy -= 1

    def _run(self, job: Job) -> None:
        if job.attempts > 1:
            log.info("resuming enrolment of voice %s (%s), attempt %d", job.voice_id, job.tier, job.attempts)
        try:
            voice = self.library.get(job.voice_id)
            references = load_references(self.library.blobs, voice.id)
            check_total([Sample(r.audio, "", r.audio.size / r.sample_rate) for r in references], self.settings.min_speech_seconds)
            clone = CloneJob(
                references=references, engine=self.engines.usable(job.engine), run=self._engine_calls,
                encoder=self.listeners.encoder, transcriber=self.listeners.transcriber,
                budget_s=self.settings.enrolment_time_budget_s, min_speech_seconds=self.settings.min_speech_seconds,
                progress=self._progress(job, show_on_voice=voice.status == "enrolling"),
                workdir=self.library.blobs.workdir(voice.id, job.tier),
            )
            result = self.cloners.get(job.engine, job.tier).clone(clone)
            if self.jobs.end(job.id, self.worker, "done"):
                self._install(voice.id, job.tier, result)
        except Cancelled:
            log.info("enrolment of voice %s was cancelled", job.voice_id)
        except Stopped:
            if self.jobs.release(job.id, self.worker):
                log.info("enrolment of voice %s stopped with this process; another worker or the next start resumes it", job.voice_id)
        except Exception as e:  # the voice must end ready or failed, never stuck `enrolling`
            message = str(e) if isinstance(e, VoxcloneError) else f"enrolment failed ({type(e).__name__}); see the server log"
            if not isinstance(e, VoxcloneError):
                log.exception("enrolment of voice %s failed", job.voice_id)
            if self.jobs.end(job.id, self.worker, "failed", message):
                self._fail(job.voice_id, message)

    def _install(self, voice_id: str, tier: str, result: ClonedVoice) -> None:
        """Store what the cloner made and let the voice speak with it."""
        for name in result.files:
            if "/" in name or name.startswith("."):
                raise ValueError(f"a cloner may only write plain file names, not {name!r}")
        self.library.blobs.put(voice_id, result.files)
        self.library.update(
            voice_id, params=result.params, filters=result.filters, scores={k: float(v) for k, v in result.scores.items()},
            tier=tier, status="ready", progress=1.0, error=None, bump_version=True,
        )
        self.cache.drop_voice(voice_id)

    def _fail(self, voice_id: str, message: str) -> None:
        try:
            voice = self.library.get(voice_id)
        except VoxcloneError:
            return  # deleted meanwhile
        works = bool(voice.params)  # it spoke before this enrolment: keep it speaking
        self.library.update(voice_id, status="ready" if works else "failed", error=message, progress=1.0 if works else 0.0)
