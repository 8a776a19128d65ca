"""Enrolment jobs, recorded in the library's database so that any worker, in any process on any machine
sharing it, can run them.

A job clones one voice at one tier. It is `queued` when submitted, `running` once a worker claims it,
then `done`, `failed` or `cancelled`. A worker claims a job for a lease (`lease_s`) and renews it while
the job runs; a job whose lease ran out (its worker died) is claimed again by the next worker that
looks, and resumes (from its checkpoints, for tiers that keep them). Claiming is one statement: on
PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` inside it lets workers claim side by side without
waiting for each other; SQLite runs it under its write lock.

A job's checkpoints (`Checkpoints`: the files a cloner names, such as the deep fit's) are copied into
the database while it runs, only by the worker holding it, and written back into the folder of whichever
worker runs it next, so a job taken over on another machine resumes where its last copy left it. They go
when the job ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Float,
    Integer,
    LargeBinary,
    Row,
    Table,
    Text,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from .database import Database, metadata
from .files import atomic_write

log = logging.getLogger("voxclone.jobs")

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
MAX_ATTEMPTS = 3  # a job whose worker died this many times (it may be what kills them) is not tried again

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("voice_id", Text, nullable=False),
    Column("engine", Text, nullable=False),
    Column("tier", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("progress", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("eta_s", Float),
    Column("error", Text),
    Column("attempts", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("worker", Text),  # who holds it: "host/pid/token"
    Column("lease_until", Float),  # unix time its worker must renew it by
)

job_checkpoints = Table(
    "job_checkpoints",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("source", Text, nullable=False),  # the folder it was copied from, as "host:path"
    Column("updated_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Job:
    id: str
    voice_id: str
    engine: str
    tier: str
    status: JobStatus
    progress: float
    message: str
    eta_s: float | None
    error: str | None
    attempts: int
    created_at: float
    updated_at: float
    worker: str | None = None
    lease_until: float | None = None


_FIELDS = tuple(f.name for f in fields(Job))


def _job(row: Row[Any]) -> Job:
    return Job(**{k: row._mapping[k] for k in _FIELDS})


def worker_id() -> str:
    """A name for one worker that says where it runs: host, process id, and a token for this run."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobQueue:
    """The jobs table. Every change is one statement, so concurrent workers never claim one job twice."""

    def __init__(self, database: Database, lease_s: float = 30.0) -> None:
        self.database = database
        self.lease_s = lease_s

    def submit(self, voice_id: str, engine: str, tier: str) -> Job:
        now = time.time()
        job_id = secrets.token_hex(8)
        row = {
            "id": job_id,
            "voice_id": voice_id,
            "engine": engine,
            "tier": tier,
            "status": "queued",
            "progress": 0.0,
            "message": "",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        with self.database.write() as db:
            db.execute(insert(jobs).values(row))
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.database.read() as db:
            row = db.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise KeyError(job_id)
        return _job(row)

    def _claimable(self, now: float, refining: Collection[str], refine: bool) -> ColumnElement[bool]:
        """Jobs a worker may claim now: queued, or running under a lease that ran out. A pool of instant
        workers (`refine` False) takes the tiers not in `refining`; a pool of refiners takes those, once
        their voice has no instant job left to wait for."""
        expired = and_(jobs.c.status == "running", jobs.c.lease_until < now)
        claimable = and_(or_(jobs.c.status == "queued", expired), jobs.c.attempts < MAX_ATTEMPTS)
        if not refine:
            return and_(claimable, jobs.c.tier.not_in(tuple(refining)))
        instant = aliased(jobs)
        pending = exists().where(
            instant.c.voice_id == jobs.c.voice_id, instant.c.status.in_(ACTIVE), instant.c.tier.not_in(tuple(refining))
        )
        return and_(claimable, jobs.c.tier.in_(tuple(refining)), not_(pending))

    def has_claimable(self, refining: Collection[str] = (), refine: bool = False) -> bool:
        """Whether a job waits for a worker of that pool (a cheap read before trying to claim)."""
        query = select(jobs.c.id).where(self._claimable(time.time(), refining, refine)).limit(1)
        with self.database.read() as db:
            return db.execute(query).first() is not None

    def claim_next(self, worker: str, refining: Collection[str] = (), refine: bool = False) -> Job | None:
        """Claim the oldest job of that pool (queued, or one whose worker stopped renewing it) for
        `worker`; None if none."""
        now = time.time()
        oldest = (
            select(jobs.c.id)
            .where(self._claimable(now, refining, refine))
            .order_by(jobs.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL: rows other workers are claiming are passed over
            .scalar_subquery()
        )
        claim = (
            update(jobs)
            .where(jobs.c.id == oldest)
            .values(
                status="running",
                worker=worker,
                lease_until=now + self.lease_s,
                attempts=jobs.c.attempts + 1,
                updated_at=now,
            )
            .returning(*jobs.c)
        )
        with self.database.write() as db:
            row = db.execute(claim).first()
        return _job(row) if row is not None else None

    def _held(self, job_id: str, worker: str) -> ColumnElement[bool]:
        return and_(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.worker == worker)

    def holds(self, job_id: str, worker: str) -> bool:
        """Whether `worker` still holds the job (not cancelled, nor taken over meanwhile)."""
        with self.database.read() as db:
            return db.execute(select(jobs.c.id).where(self._held(job_id, worker))).first() is not None

    def renew(self, worker: str) -> int:
        """Extend the leases of every job `worker` holds; returns how many it holds."""
        now = time.time()
        statement = (
            update(jobs)
            .where(jobs.c.worker == worker, jobs.c.status == "running")
            .values(lease_until=now + self.lease_s)
        )
        with self.database.write() as db:
            return int(db.execute(statement).rowcount)

    def report(self, job_id: str, worker: str, progress: float, message: str, eta_s: float | None = None) -> bool:
        """Record progress (and renew the lease); False if the job is no longer this worker's to run."""
        now = time.time()
        statement = (
            update(jobs)
            .where(self._held(job_id, worker))
            .values(
                progress=progress, message=message[:200], eta_s=eta_s, updated_at=now, lease_until=now + self.lease_s
            )
        )
        with self.database.write() as db:
            return bool(db.execute(statement).rowcount == 1)

    def end(
        self, job_id: str, worker: str, status: JobStatus, error: str | None = None, message: str | None = None
    ) -> bool:
        """Finish a job `worker` holds (with a last `message`, if given); False if it no longer does
        (cancelled, or taken over meanwhile)."""
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "eta_s": None,
            "updated_at": time.time(),
            "lease_until": None,
        }
        if status == "done":
            values["progress"] = 1.0
        if message is not None:
            values["message"] = message[:200]
        with self.database.write() as db:
            return _ended(db, db.execute(update(jobs).where(self._held(job_id, worker)).values(values)), job_id)

    def drop(self, job_id: str, error: str) -> bool:
        """Fail a job that is still queued (what it would have worked on is gone); False if it was not queued."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "queued")
            .values(status="failed", error=error, message=error[:200], updated_at=time.time())
        )
        with self.database.write() as db:
            return _ended(db, db.execute(statement), job_id)

    def cancel(self, job_id: str) -> bool:
        """Cancel one queued or running job; a running one stops at its next progress report."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
            .values(status="cancelled", eta_s=None, updated_at=time.time(), lease_until=None)
        )
        with self.database.write() as db:
            return _ended(db, db.execute(statement), job_id)

    def release(self, job_id: str, worker: str, *, attempted: bool = False) -> bool:
        """Put a job `worker` holds back in the queue, for the next worker: its process is stopping (the
        attempt does not count), or died (`attempted`)."""
        values: dict[str, Any] = {"status": "queued", "worker": None, "lease_until": None, "updated_at": time.time()}
        if not attempted:
            values["attempts"] = case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0)
        statement = update(jobs).where(self._held(job_id, worker)).values(values)
        with self.database.write() as db:
            return bool(db.execute(statement).rowcount == 1)

    def requeue_dead(self) -> int:
        """Queue again the running jobs of workers on this host whose process has ended (a restart after
        a crash resumes them at once rather than when their leases run out)."""
        prefix = f"{socket.gethostname()}/"
        with self.database.read() as db:
            held = db.execute(
                select(jobs.c.id, jobs.c.worker).where(
                    jobs.c.status == "running", jobs.c.worker.startswith(prefix, autoescape=True)
                )
            ).fetchall()
        requeued = 0
        for job_id, worker in held:
            pid = worker.split("/")[1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                requeued += self.release(job_id, worker, attempted=True)
        return requeued

    def is_cancelled(self, job_id: str) -> bool:
        return self.get(job_id).status == "cancelled"

    def cancel_voice(self, voice_id: str) -> int:
        """Cancel a voice's queued and running jobs; a running one stops at its next progress report."""
        statement = (
            update(jobs)
            .where(jobs.c.voice_id == voice_id, jobs.c.status.in_(ACTIVE))
            .values(status="cancelled", eta_s=None, updated_at=time.time(), lease_until=None)
        )
        ended = select(jobs.c.id).where(jobs.c.voice_id == voice_id, jobs.c.status.not_in(ACTIVE))
        with self.database.write() as db:
            cancelled = int(db.execute(statement).rowcount)
            db.execute(delete(job_checkpoints).where(job_checkpoints.c.job_id.in_(ended)))
            return cancelled

    def of_voice(self, voice_id: str) -> list[Job]:
        with self.database.read() as db:
            rows = db.execute(select(jobs).where(jobs.c.voice_id == voice_id).order_by(jobs.c.created_at)).fetchall()
        return [_job(r) for r in rows]

    def queued(self) -> list[Job]:
        """Queued jobs, oldest first."""
        with self.database.read() as db:
            rows = db.execute(select(jobs).where(jobs.c.status == "queued").order_by(jobs.c.created_at)).fetchall()
        return [_job(r) for r in rows]

    def abandoned(self) -> list[Job]:
        """Running jobs whose worker died MAX_ATTEMPTS times: no worker will claim them again."""
        query = select(jobs).where(
            jobs.c.status == "running", jobs.c.lease_until < time.time(), jobs.c.attempts >= MAX_ATTEMPTS
        )
        with self.database.read() as db:
            return [_job(r) for r in db.execute(query).fetchall()]

    def give_up(self, job: Job, error: str) -> bool:
        """Fail an abandoned job (only if it is still as it was found)."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.status == "running", jobs.c.worker == job.worker)
            .values(status="failed", error=error, eta_s=None, lease_until=None, updated_at=time.time())
        )
        with self.database.write() as db:
            return _ended(db, db.execute(statement), job.id)

    def active_count(self, tiers: Collection[str] | None = None, *, exclude: bool = False) -> int:
        """Queued and running jobs: all of them, those of `tiers`, or (with `exclude`) all but those."""
        query = select(func.count()).select_from(jobs).where(jobs.c.status.in_(ACTIVE))
        if tiers is not None:
            query = query.where(jobs.c.tier.not_in(tuple(tiers)) if exclude else jobs.c.tier.in_(tuple(tiers)))
        with self.database.read() as db:
            return int(db.execute(query).scalar_one())

    def latest(self, tiers: Collection[str], voice_id: str | None = None) -> dict[str, Job]:
        """Each voice's most recent job of one of `tiers` (only `voice_id`'s, if given), by voice id."""
        query = select(jobs).where(jobs.c.tier.in_(tuple(tiers)))
        if voice_id is not None:
            query = query.where(jobs.c.voice_id == voice_id)
        with self.database.read() as db:
            rows = db.execute(query.order_by(jobs.c.created_at)).fetchall()
        return {row._mapping["voice_id"]: _job(row) for row in rows}

    def forget_voice(self, voice_id: str) -> None:
        with self.database.write() as db:
            db.execute(
                delete(job_checkpoints).where(
                    job_checkpoints.c.job_id.in_(select(jobs.c.id).where(jobs.c.voice_id == voice_id))
                )
            )
            db.execute(delete(jobs).where(jobs.c.voice_id == voice_id))

    def keep_checkpoint(self, job_id: str, worker: str, name: str, data: bytes, source: str) -> bool:
        """Store (replace) one checkpoint file of a job `worker` holds, copied from `source`, all or
        nothing; False if it no longer holds the job (a worker that lost its job never overwrites its
        successor's checkpoint)."""
        held = select(jobs.c.id).where(self._held(job_id, worker)).with_for_update()  # PostgreSQL: no claim meanwhile
        row = {
            "job_id": job_id,
            "name": name,
            "data": data,
            "size": len(data),
            "source": source,
            "updated_at": time.time(),
        }
        with self.database.write() as db:
            if db.execute(held).first() is None:
                return False
            db.execute(
                delete(job_checkpoints).where(job_checkpoints.c.job_id == job_id, job_checkpoints.c.name == name)
            )
            db.execute(insert(job_checkpoints).values(row))
        return True

    def checkpoints(self, job_id: str) -> dict[str, tuple[str, bytes]]:
        """A job's stored checkpoint files by name: the folder each was copied from, and its bytes."""
        query = select(job_checkpoints.c.name, job_checkpoints.c.source, job_checkpoints.c.data).where(
            job_checkpoints.c.job_id == job_id
        )
        with self.database.read() as db:
            return {name: (source, bytes(data)) for name, source, data in db.execute(query)}


def _ended(db: Connection, result: Any, job_id: str) -> bool:
    """After a statement that ends one job: whether it did, and if so its checkpoints go with it."""
    if result.rowcount != 1:
        return False
    db.execute(delete(job_checkpoints).where(job_checkpoints.c.job_id == job_id))
    return True


class Checkpoints:
    """The checkpoint files of one job run by one worker: `folder` is the working copy the cloner writes,
    the database holds the copy a worker anywhere resumes from.

    `restore` writes the stored copy into the folder before the cloner starts: it is the job's latest
    (only the job's holder stores one), unless it was copied from this folder, which still has the file
    (then at least as new: a restart on the same machine). `take` stores the files that changed since,
    at most every `every_s` seconds unless forced (each a few hundred KB to a few MB)."""

    def __init__(
        self, queue: JobQueue, job: Job, worker: str, folder: Path, names: Collection[str], every_s: float
    ) -> None:
        self.queue, self.job, self.worker, self.folder = queue, job, worker, folder
        self.names = tuple(names)
        self.every_s = every_s
        self._taken: dict[str, tuple[int, int, int]] = {}  # name -> (inode, size, mtime) when last stored
        self._last = time.monotonic()
        self._source = f"{socket.gethostname()}:{folder}"

    def _signature(self, name: str) -> tuple[int, int, int] | None:
        try:
            stat = (self.folder / name).stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def restore(self) -> list[str]:
        """Write the job's stored checkpoint files into the folder; returns their names."""
        if not self.names:
            return []
        stored = {
            name: data
            for name, (source, data) in self.queue.checkpoints(self.job.id).items()
            if name in self.names and not (source == self._source and (self.folder / name).is_file())
        }
        for name, data in stored.items():
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.folder / name, data)
            signature = self._signature(name)
            if signature is not None:
                self._taken[name] = signature
        return sorted(stored)

    def take(self, *, force: bool = False) -> None:
        """Store the checkpoint files that changed since they were last stored (a copy that fails is
        logged and tried again next time: the job goes on)."""
        now = time.monotonic()
        if not self.names or (not force and now - self._last < self.every_s):
            return
        self._last = now
        for name in self.names:
            signature = self._signature(name)
            if signature is None or self._taken.get(name) == signature:
                continue
            try:
                data = (self.folder / name).read_bytes()  # written by rename: a whole file, old or new
                if not self.queue.keep_checkpoint(self.job.id, self.worker, name, data, self._source):
                    return  # no longer this worker's job
            except (OSError, SQLAlchemyError) as e:
                log.warning("could not keep checkpoint %s of job %s in the database: %s", name, self.job.id, e)
                continue
            self._taken[name] = signature
