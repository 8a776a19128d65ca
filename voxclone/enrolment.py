"""Voice enrolment: store a voice's samples, clone it off the request path, report progress.

Every enrolment is a job in the database (voxclone.jobs), run by a bounded pool of threads
(settings.enrolment_workers at once; with settings.enrolment_queue waiting, more are refused with
LimitExceeded rather than queued without bound). Samples are stored before a job is queued, so a
restart resumes every voice left `enrolling` from its own samples. Any process sharing the database
may run the job (settings.run_enrolments): each claims jobs for a lease it renews while it runs, so a
job whose worker died is taken over by another when its lease runs out. The cloner for the voice's engine
and tier (voxclone.cloning) does the work; its engine calls go through the speech worker pool, behind
any speech waiting, and what it returns is stored here without knowing its format.

A refining tier (the deep clone) is a second job queued behind the voice's instant one: the voice is
ready and speaks as soon as the instant clone is done, and the refinement runs on its own pool
(settings.deep_workers at once; it claims a refinement only once its voice's instant job is over), so
long fits never hold up instant enrolments. It replaces the voice's
artefacts only when its cloner judges the result better (else `NotBetter`: the voice keeps what it
had), and a refinement that fails leaves the voice speaking as before.
Where consent is required (voxclone.consent), new samples are accepted only with a recording of their
speaker reading a fresh challenge; the checked recording is kept with the voice. Creations, deletions
and consent decisions go to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .cloning import ClonedVoice, CloneJob, Cloners, NotBetter, Progress
from .cloning.prepare import Sample, check_total, prepare
from .consent import Actor, Consent, Consents, Evidence
from .engines import Engines
from .errors import BadInput, LimitExceeded, VoiceNotFound, VoxcloneError
from .jobs import ACTIVE, MAX_ATTEMPTS, Checkpoints, Job, JobQueue, worker_id
from .samples import list_samples, load_references, sample_audio, store
from .settings import Settings
from .voices import Voice, VoiceLibrary, check_name
from .workers import WorkerPool

if TYPE_CHECKING:
    from .audit import AuditLog
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
    """The process is shutting down: the job stays `running`, so the next start resumes it."""


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
        *,
        consents: Consents | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.library = library
        self.jobs = jobs
        self.engines = engines
        self.cloners = cloners
        self.workers = workers
        self.cache = cache
        self.listeners = listeners
        self.consents = consents
        self.audit = audit
        self._executor = ThreadPoolExecutor(settings.enrolment_workers, thread_name_prefix="voxclone-enrol")
        self._refiner = ThreadPoolExecutor(settings.deep_workers, thread_name_prefix="voxclone-refine")
        self._refining = cloners.refining_tiers()
        self._capacity = settings.enrolment_workers + settings.enrolment_queue
        self._refine_capacity = settings.deep_workers + settings.enrolment_queue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.worker = worker_id()
        self.installed: list[Callable[[Voice], None]] = []  # told of each voice a clone was installed in
        self._busy = {False: 0, True: 0}  # jobs this process is running, instant and refining
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
                self.library.update(
                    voice.id,
                    status="failed",
                    error="enrolment was interrupted and no samples were stored; add the voice again",
                )
                self.jobs.cancel_voice(voice.id)
            elif not any(j.status in ACTIVE for j in self.jobs.of_voice(voice.id)):
                tier = voice.tier if voice.tier and voice.tier not in self._refining else DEFAULT_TIER
                self.jobs.submit(voice.id, voice.engine, tier)  # a voice from before jobs were recorded
        if self.jobs.requeue_dead():
            log.info("resuming enrolments a stopped process on this machine left running")
        self._keeper = threading.Thread(target=self._keep, name="voxclone-enrol-keeper", daemon=True)
        self._keeper.start()
        self._kick_all()

    @property
    def running(self) -> bool:
        """Whether this process is claiming and running jobs now."""
        return self._keeper is not None and self._keeper.is_alive() and not self._stopping.is_set()

    def shutdown(self) -> None:
        """Stop: queued jobs wait for the next worker; running ones stop at their next progress report
        and go back to the queue."""
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._refiner.shutdown(wait=False, cancel_futures=True)

    def _kick(self, refine: bool) -> None:
        """Let a thread of that pool claim and run jobs until none is left to claim."""
        if self.runs_jobs and not self._stopping.is_set():
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                (self._refiner if refine else self._executor).submit(self._run_claimed, refine)

    def _kick_all(self) -> None:
        for _ in range(self.settings.enrolment_workers):
            self._kick(refine=False)
        for _ in range(self.settings.deep_workers if self._refining else 0):
            self._kick(refine=True)

    def _keep(self) -> None:
        """While running: renew this worker's leases, look for jobs queued elsewhere (or left by dead
        workers), and fail jobs no worker will claim again."""
        every = min(self.settings.job_poll_s, self.jobs.lease_s / 3)
        pools = {False: self.settings.enrolment_workers, True: self.settings.deep_workers if self._refining else 0}
        while not self._stopping.wait(every):
            try:
                self.jobs.renew(self.worker)
                for refine, size in pools.items():
                    if self._busy[refine] < size and self.jobs.has_claimable(self._refining, refine):
                        self._kick(refine)
                for job in self.jobs.abandoned():
                    message = f"enrolment stopped with its worker {MAX_ATTEMPTS} times; add the voice again or try another tier"
                    if self.jobs.give_up(job, message) and job.tier not in self._refining:
                        self._fail(job.voice_id, message)
            except Exception:  # the database may be briefly unreachable: try again next time
                log.exception("enrolment keeper")

    # Voices -------------------------------------------------------------------------------------

    def _check_tier(self, engine: str, tier: str) -> None:
        self.cloners.get(engine, tier)  # BadInput naming what is installed

    def _prepare(self, uploads: list[Upload]) -> list[Sample]:
        if not uploads:
            raise BadInput("upload at least one audio file in `files`")
        return [
            prepare(u.data, u.file_name, max_seconds=self.settings.max_upload_seconds, transcript=u.transcript)
            for u in uploads
        ]

    def _check_capacity(self, tiers: list[str]) -> None:
        if (
            any(t not in self._refining for t in tiers)
            and self.jobs.active_count(self._refining, exclude=True) >= self._capacity
        ):
            raise LimitExceeded(
                f"{self._capacity} enrolments are already running or queued; try again in a minute",
                limit="enrolment_queue",
                retry_after=30,
            )
        if any(t in self._refining for t in tiers) and self.jobs.active_count(self._refining) >= self._refine_capacity:
            raise LimitExceeded(
                f"{self._refine_capacity} deep clones are already running or queued; try again later",
                limit="enrolment_queue",
                retry_after=300,
            )

    def _tiers(self, engine: str, tier: str) -> list[str]:
        """The jobs a request for `tier` makes, in order: a refining tier starts from an instant clone."""
        tiers = [DEFAULT_TIER, tier] if tier in self._refining else [tier]
        for t in tiers:
            self._check_tier(engine, t)
        return tiers

    def _submit(self, voice_id: str, engine: str, tiers: list[str]) -> None:
        with self._lock:
            self._check_capacity(tiers)  # again: another request may have taken the last place meanwhile
            for tier in tiers:
                self.jobs.submit(voice_id, engine, tier)
        self._kick(refine=tiers[0] in self._refining)

    def _after_instant(self, voice_id: str) -> None:
        """A voice's instant job is over: its queued refinements may be claimed now, or fail if it has
        nothing to refine."""
        try:
            ready = self.library.get(voice_id).status == "ready"
        except VoxcloneError:
            return  # deleted meanwhile: its jobs were cancelled
        for job in self.jobs.of_voice(voice_id):
            if job.status == "queued" and job.tier in self._refining and not ready:
                self.jobs.drop(job.id, "the instant clone it refines failed")
        if ready and any(j.status == "queued" and j.tier in self._refining for j in self.jobs.of_voice(voice_id)):
            self._kick(refine=True)

    def add_voice(
        self,
        *,
        name: str,
        uploads: list[Upload],
        description: str = "",
        labels: dict[str, str] | None = None,
        engine: str | None = None,
        tier: str = DEFAULT_TIER,
        consent: Consent | None = None,
        actor: Actor | None = None,
    ) -> Voice:
        """Check and store the samples (and the speaker's consent, where required), create the voice as
        `enrolling`, and queue its cloning (a refining tier: its instant clone, then the refinement). Blocking."""
        engine = engine or self.settings.clone_engine
        tiers = self._tiers(engine, tier)
        self._check_capacity(tiers)  # before decoding anything: a full queue is refused at once
        samples = self._prepare(uploads)
        check_total(samples, self.settings.min_speech_seconds)
        evidence = self._check_consent(consent, samples, actor, name)
        voice = self.library.create(
            name=check_name(name),
            engine=engine,
            params={},
            category="cloned",
            labels=labels,
            description=description,
            status="enrolling",
        )
        try:
            for sample in samples:
                store(self.library.blobs, voice.id, sample)
            if evidence is not None and self.consents is not None:
                self.consents.store(self.library.blobs, voice.id, evidence)
            self._submit(voice.id, engine, tiers)
        except OSError as e:  # disk full or similar: leave nothing half-made
            self.library.delete(voice.id)
            raise BadInput(f"could not store the samples: {e.strerror}") from e
        except BaseException:
            self.library.delete(voice.id)
            raise
        self._audit(
            "voice.created",
            actor,
            voice_id=voice.id,
            name=voice.name,
            engine=engine,
            tier=tier,
            samples=len(samples),
            consent="verified" if evidence else "not required",
        )
        return self.library.get(voice.id)

    def edit(
        self,
        voice_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        uploads: list[Upload] | None = None,
        tier: str | None = None,
        consent: Consent | None = None,
        actor: Actor | None = None,
    ) -> Voice:
        """Rename or relabel a voice; new recordings (with their speaker's consent, where required) re-enrol it
        with all of its samples (at `tier`, default instant). A refining `tier` without recordings refines the
        voice as it is. Blocking."""
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
            tiers = self._tiers(voice.engine, tier or DEFAULT_TIER)
            self._check_capacity(tiers)
            samples = self._prepare(uploads)
            evidence = self._check_consent(consent, samples, actor, voice.name)
            for sample in samples:
                store(self.library.blobs, voice.id, sample)
            if evidence is not None and self.consents is not None:
                self.consents.store(self.library.blobs, voice.id, evidence)
            self._cancel_refinements(voice.id)  # they refine the voice as it was
            self._submit(voice.id, voice.engine, tiers)
            changes.update(status="enrolling", progress=0.0, error=None)
            self._audit(
                "voice.samples_added",
                actor,
                voice_id=voice.id,
                name=voice.name,
                samples=len(samples),
                consent="verified" if evidence else "not required",
            )
        elif tier in self._refining:
            self._refine(voice, tier)
        elif tier is not None:
            self._check_tier(voice.engine, tier)  # an unknown tier is refused even with nothing to clone
        return self.library.update(voice.id, **changes) if changes else self.library.get(voice.id)

    def _refine(self, voice: Voice, tier: str) -> None:
        """Queue a refinement of a voice's instant clone, from its stored samples."""
        self._check_samples_allowed(voice)
        if voice.status != "ready":
            raise BadInput(f"voice {voice.name!r} failed to enrol; add samples to enrol it again")
        if voice.tier != DEFAULT_TIER:
            raise BadInput(
                f"voice {voice.name!r} speaks with its {voice.tier or 'stored'} clone; a {tier} clone refines an "
                f"{DEFAULT_TIER} one: add samples with tier={tier} to clone it again"
            )
        if any(j.status in ACTIVE and j.tier in self._refining for j in self.jobs.of_voice(voice.id)):
            raise BadInput(
                f"voice {voice.name!r} is already being refined; wait for it, or delete the voice to stop it"
            )
        self._submit(voice.id, voice.engine, self._tiers(voice.engine, tier)[1:])

    def _cancel_refinements(self, voice_id: str) -> None:
        for job in self.jobs.of_voice(voice_id):
            if job.status in ACTIVE and job.tier in self._refining:
                self.jobs.cancel(job.id)

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

    def delete(self, voice_id: str, actor: Actor | None = None) -> Voice:
        """Delete a voice: its running enrolment stops, its files (samples, consent) and cached audio go."""
        voice = self.library.get(voice_id)
        self.jobs.cancel_voice(voice.id)
        voice = self.library.delete(voice.id)
        self.cache.drop_voice(voice.id)
        self._audit("voice.deleted", actor, voice_id=voice.id, name=voice.name, category=voice.category)
        return voice

    def refinements(self, voice_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Each voice's latest refinement (only `voice_id`'s, if given), as the API shows it: its tier,
        status (queued, running, done, failed, cancelled), progress, seconds left and last message."""
        if not self._refining:
            return {}
        return {
            job.voice_id: {
                "tier": job.tier,
                "status": job.status,
                "progress": round(job.progress, 3),
                "eta_s": job.eta_s if job.status == "running" else None,
                "message": job.error or job.message,
            }
            for job in self.jobs.latest(self._refining, voice_id).values()
        }

    def _check_consent(
        self, consent: Consent | None, samples: list[Sample], actor: Actor | None, name: str
    ) -> Evidence | None:
        """The checked consent for these samples, None where none is needed; ConsentRefused otherwise."""
        if self.consents is None:
            return None
        return self.consents.check(consent, samples, actor or Actor(), voice_name=name)

    def _audit(self, event: str, actor: Actor | None, **details: Any) -> None:
        if self.audit is not None:
            self.audit.record(event, key_id=actor.key_id if actor else None, **details)

    def samples(self, voice: Voice) -> list[dict[str, Any]]:
        """A voice's stored recordings: id, file name, seconds of speech (not their transcripts)."""
        if voice.category != "cloned":
            return []
        return [
            {k: s[k] for k in ("sample_id", "file_name", "duration_s")}
            for s in list_samples(self.library.blobs, voice.id)
        ]

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

    def _progress(self, job: Job, show_on_voice: bool, checkpoints: Checkpoints) -> Progress:
        last = [0.0]

        def report(fraction: float, message: str, /, eta_s: float | None = None) -> None:
            now = time.monotonic()
            if now - last[0] < _PROGRESS_EVERY_S:
                return
            last[0] = now
            if self._stopping.is_set():
                raise Stopped(job.id)
            fraction = round(min(max(fraction, 0.0), 0.99), 3)
            eta = None if eta_s is None else round(max(eta_s, 0.0), 1)
            if not self.jobs.report(job.id, self.worker, fraction, message, eta):
                raise Cancelled(job.id) if self.jobs.is_cancelled(job.id) else Stopped(job.id)
            checkpoints.take()
            if show_on_voice:
                self.library.update(job.voice_id, progress=fraction)

        return report

    def _current(self, voice: Voice) -> ClonedVoice:
        """What the voice speaks with now, as a cloner's artefacts: the files its params name, read back."""
        files = {}
        for value in voice.params.values():
            if isinstance(value, str) and "/" not in value:
                with contextlib.suppress(ValueError):  # not a file name
                    data = self.library.blobs.get(voice.id, value)
                    if data is not None:
                        files[value] = data
        return ClonedVoice(
            params=dict(voice.params), files=files, filters=list(voice.filters), scores=dict(voice.scores)
        )

    def _run_claimed(self, refine: bool) -> None:
        """Claim jobs of one pool (this process's, other processes', dead workers') and run them, one at a time."""
        while not self._stopping.is_set():
            job = self.jobs.claim_next(self.worker, self._refining, refine)
            if job is None:
                return
            with self._lock:
                self._busy[refine] += 1
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._busy[refine] -= 1

    def _run(self, job: Job) -> None:
        if job.attempts > 1:
            log.info("resuming enrolment of voice %s (%s), attempt %d", job.voice_id, job.tier, job.attempts)
        refining = job.tier in self._refining
        workdir: Path | None = None
        checkpoints: Checkpoints | None = None
        try:
            voice = self.library.get(job.voice_id)
            references = load_references(self.library.blobs, voice.id)
            check_total(
                [Sample(r.audio, "", r.audio.size / r.sample_rate) for r in references],
                self.settings.min_speech_seconds,
            )
            cloner = self.cloners.get(job.engine, job.tier)
            base = self.library.get(cloner.base_voice) if cloner.base_voice else None
            # The job's own folder (a new job starts afresh), with the checkpoints it left, whichever machine ran it.
            workdir = self.library.blobs.workdir(voice.id, job.id)
            checkpoints = Checkpoints(
                self.jobs, job, self.worker, workdir, cloner.checkpoints, self.settings.job_checkpoint_s
            )
            if checkpoints.restore():
                log.info("the %s enrolment of voice %s resumes from its stored checkpoint", job.tier, voice.id)
            clone = CloneJob(
                references=references,
                engine=self.engines.usable(base.engine if base else job.engine),
                run=self._engine_calls,
                encoder=self.listeners.encoder,
                transcriber=self.listeners.transcriber,
                budget_s=self.settings.enrolment_time_budget_s,
                min_speech_seconds=self.settings.min_speech_seconds,
                progress=self._progress(job, voice.status == "enrolling" and not refining, checkpoints),
                workdir=workdir,
                current=self._current(voice) if refining else None,
                voice_name=voice.name,
            )
            result = cloner.clone(clone)
            if base is not None:  # the base voice, then the cloner's filters over it
                result.params, result.filters = {**base.params, **result.params}, [*base.filters, *result.filters]
                result.engine = base.engine
            done = f"the voice speaks with its {job.tier} clone now" if refining else None
            # The voice first, while the job is still this worker's: whoever sees the job done hears the clone.
            if self.jobs.holds(job.id, self.worker):
                self._install(voice.id, job.tier, result)
                self.jobs.end(job.id, self.worker, "done", message=done)
        except NotBetter as e:  # a refinement that is not better: the voice keeps what it had, and why is shown
            # The scores first: whoever sees the job done sees what it measured.
            self._add_scores(job.voice_id, e.scores)
            self.jobs.end(job.id, self.worker, "done", message=f"kept {voice.tier or DEFAULT_TIER}: {e.reason}")
        except Cancelled:
            log.info("enrolment of voice %s was cancelled", job.voice_id)
            if not self.library.exists(job.voice_id):  # deleted: what the job wrote while it was deleted goes too
                self.library.blobs.delete_voice(job.voice_id)
        except Stopped:
            if checkpoints is not None:
                checkpoints.take(force=True)  # the latest, for whichever worker resumes it
            if self.jobs.release(job.id, self.worker):
                log.info(
                    "enrolment of voice %s stopped with this process; another worker or the next start resumes it",
                    job.voice_id,
                )
            return  # its work folder is kept for the next start
        except Exception as e:  # the voice must end ready or failed, never stuck `enrolling`
            message = (
                str(e) if isinstance(e, VoxcloneError) else f"enrolment failed ({type(e).__name__}); see the server log"
            )
            if not isinstance(e, VoxcloneError):
                log.exception("enrolment of voice %s failed", job.voice_id)
            if self.jobs.end(job.id, self.worker, "failed", message) and not refining:
                self._fail(job.voice_id, message)  # a failed refinement leaves the voice as it was
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        if not refining:
            self._after_instant(job.voice_id)

    def _install(self, voice_id: str, tier: str, result: ClonedVoice) -> None:
        """Store what the cloner made and let the voice speak with it."""
        for name in result.files:
            if "/" in name or name.startswith("."):
                raise ValueError(f"a cloner may only write plain file names, not {name!r}")
        self.library.blobs.put(voice_id, result.files)
        voice = self.library.update(
            voice_id,
            **({"engine": result.engine} if result.engine else {}),
            params=result.params,
            filters=result.filters,
            scores={k: float(v) for k, v in result.scores.items()},
            tier=tier,
            status="ready",
            progress=1.0,
            error=None,
            bump_version=True,
        )
        self.cache.drop_voice(voice_id)
        for hook in self.installed:
            hook(voice)

    def _add_scores(self, voice_id: str, scores: dict[str, float]) -> None:
        try:
            voice = self.library.get(voice_id)
        except VoxcloneError:
            return  # deleted meanwhile
        self.library.update(voice_id, scores={**voice.scores, **{k: float(v) for k, v in scores.items()}})

    def _fail(self, voice_id: str, message: str) -> None:
        try:
            voice = self.library.get(voice_id)
        except VoxcloneError:
            return  # deleted meanwhile
        works = bool(voice.params)  # it spoke before this enrolment: keep it speaking
        self.library.update(
            voice_id, status="ready" if works else "failed", error=message, progress=1.0 if works else 0.0
        )
