"""Enrolment jobs, recorded in the library's SQLite database so that any process can run them.

A job clones one voice at one tier. It is `queued` when submitted, `running` once a worker claims it,
then `done`, `failed` or `cancelled`. A job left `running` by a process that stopped is queued again
at the next start, so a restart resumes it (from its checkpoints, for tiers that keep them).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .database import connect

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    voice_id TEXT NOT NULL,
    engine TEXT NOT NULL,
    tier TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    eta_s REAL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""


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


class JobQueue:
    """The jobs table. Every change is one statement, so concurrent workers never claim one job twice."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        with self._db() as db:
            db.execute(_SCHEMA)
            db.execute("CREATE INDEX IF NOT EXISTS jobs_by_voice ON jobs (voice_id, status)")

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.db_path)

    def submit(self, voice_id: str, engine: str, tier: str) -> Job:
        now = time.time()
        job_id = secrets.token_hex(8)
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (id, voice_id, engine, tier, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, voice_id, engine, tier, now, now),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return Job(**dict(row))

    def claim(self, job_id: str) -> bool:
        """Mark a queued job running; False if another worker (or a cancel) got there first."""
        with self._db() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'queued'",
                (time.time(), job_id),
            )
        return cursor.rowcount == 1

    def report(self, job_id: str, progress: float, message: str, eta_s: float | None = None) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE jobs SET progress = ?, message = ?, eta_s = ?, updated_at = ? WHERE id = ? AND status = 'running'",
                (progress, message[:200], eta_s, time.time(), job_id),
            )

    def end(self, job_id: str, status: JobStatus, error: str | None = None, message: str | None = None) -> bool:
        """Finish a running job (with a last `message`, if given); False if it was no longer running
        (cancelled meanwhile)."""
        with self._db() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, error = ?, progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END, "
                "message = COALESCE(?, message), eta_s = NULL, updated_at = ? WHERE id = ? AND status = 'running'",
                (status, error, status, None if message is None else message[:200], time.time(), job_id),
            )
        return cursor.rowcount == 1

    def drop(self, job_id: str, error: str) -> bool:
        """Fail a job that is still queued (what it would have worked on is gone); False if it was not queued."""
        with self._db() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, message = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                (error, error[:200], time.time(), job_id),
            )
        return cursor.rowcount == 1

    def cancel(self, job_id: str) -> bool:
        """Cancel one queued or running job; a running one stops at its next progress report."""
        with self._db() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'cancelled', eta_s = NULL, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')",
                (time.time(), job_id),
            )
        return cursor.rowcount == 1

    def is_cancelled(self, job_id: str) -> bool:
        return self.get(job_id).status == "cancelled"

    def cancel_voice(self, voice_id: str) -> int:
        """Cancel a voice's queued and running jobs; a running one stops at its next progress report."""
        with self._db() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'cancelled', eta_s = NULL, updated_at = ? WHERE voice_id = ? AND status IN ('queued', 'running')",
                (time.time(), voice_id),
            )
        return cursor.rowcount

    def of_voice(self, voice_id: str) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs WHERE voice_id = ? ORDER BY created_at", (voice_id,)).fetchall()
        return [Job(**dict(r)) for r in rows]

    def queued(self) -> list[Job]:
        """Queued jobs, oldest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at").fetchall()
        return [Job(**dict(r)) for r in rows]

    def active_count(self, tiers: Collection[str] | None = None, *, exclude: bool = False) -> int:
        """Queued and running jobs: all of them, those of `tiers`, or (with `exclude`) all but those."""
        query = "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        params: tuple[str, ...] = ()
        if tiers is not None:
            query += f" AND tier {'NOT ' if exclude else ''}IN ({', '.join('?' * len(tiers))})"
            params = tuple(tiers)
        with self._db() as db:
            return int(db.execute(query, params).fetchone()[0])

    def latest(self, tiers: Collection[str], voice_id: str | None = None) -> dict[str, Job]:
        """Each voice's most recent job of one of `tiers` (only `voice_id`'s, if given), by voice id."""
        query = f"SELECT * FROM jobs WHERE tier IN ({', '.join('?' * len(tiers))})"
        params = tuple(tiers)
        if voice_id is not None:
            query, params = query + " AND voice_id = ?", (*params, voice_id)
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created_at", params).fetchall()
        return {row["voice_id"]: Job(**dict(row)) for row in rows}

    def requeue_interrupted(self) -> list[Job]:
        """At start-up: jobs left running by a process that stopped are queued again."""
        with self._db() as db:
            db.execute("UPDATE jobs SET status = 'queued', updated_at = ? WHERE status = 'running'", (time.time(),))
        return self.queued()

    def forget_voice(self, voice_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM jobs WHERE voice_id = ?", (voice_id,))
