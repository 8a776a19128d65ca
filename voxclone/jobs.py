"""Enrolment jobs, recorded in the library's database so that any worker, in any process on any machine
sharing it, can run them.

A job clones one voice at one tier. It is `queued` when submitted, `running` once a worker claims it,
then `done`, `failed` or `cancelled`. A worker claims a job for a lease (`lease_s`) and renews it while
the job runs; a job whose lease ran out (its worker died) is claimed again by the next worker that
looks, and resumes (from its checkpoints, for tiers that keep them). Claiming is one statement: on
PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` inside it lets workers claim side by side without
waiting for each other; SQLite runs it under its write lock.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any, Literal

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    Integer,
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
from sqlalchemy.orm import aliased

from .database import Database, metadata

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
            return bool(db.execute(update(jobs).where(self._held(job_id, worker)).values(values)).rowcount == 1)

    def drop(self, job_id: str, error: str) -> bool:
        """Fail a job that is still queued (what it would have worked on is gone); False if it was not queued."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "queued")
            .values(status="failed", error=error, message=error[:200], updated_at=time.time())
        )
        with self.database.write() as db:
            return bool(db.execute(statement).rowcount == 1)

    def cancel(self, job_id: str) -> bool:
        """Cancel one queued or running job; a running one stops at its next progress report."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
            .values(status="cancelled", eta_s=None, updated_at=time.time(), lease_until=None)
        )
        with self.database.write() as db:
            return bool(db.execute(statement).rowcount == 1)

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
        with self.database.write() as db:
            return int(db.execute(statement).rowcount)

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
            return bool(db.execute(statement).rowcount == 1)

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
            db.execute(delete(jobs).where(jobs.c.voice_id == voice_id))
