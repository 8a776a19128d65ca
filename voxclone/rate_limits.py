"""Rate-limit windows counted in the library's database, so that every process serving one library
(Ray Serve replicas, servers behind a load balancer) counts a caller's requests together.

A sliding-window counter, as `limits`' SlidingWindowCounter counts: requests in the current fixed
window, plus those of the previous window weighted by how much of it still overlaps the last
`seconds`. A hit counted in the database is one transaction: count it, and take it back if it went over.

That transaction costs a few milliseconds, most of a cached answer's time. So with `sync_s` > 0 (the
default), a process counts a caller in the database at most once per `sync_s` (and always when the
caller is near its limit, so a refusal is always exact); in between it admits the caller from the
counts it read then plus its own hits since, which it writes at the next count. What other processes
admitted since this one last read is missed: a caller spread over N processes can get at most N x
`sync_s` worth of requests past the limit (as with Kong's `sync_rate`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Column, Connection, Integer, Table, Text, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .database import Database, metadata


@dataclass
class _Held:
    """What a process knows of one caller between two counts in the database."""

    read_at: float  # when the counts were read
    window: int  # the current window then
    stored: tuple[int, int]  # (current, previous) windows' hits in the database, as read
    since: Counter[int] = field(default_factory=Counter)  # hits admitted here since, by window


rate_windows = Table(
    "rate_windows",
    metadata,
    Column("client", Text, primary_key=True),
    Column("window_start", Integer, primary_key=True),  # unix seconds, a multiple of the window
    Column("hits", Integer, nullable=False),
)


class SharedWindows:
    """`amount` requests per `seconds` per client, counted in `database`."""

    def __init__(self, database: Database, amount: int, seconds: int, sync_s: float = 0.0) -> None:
        self.database = database
        self.amount = amount
        self.seconds = seconds
        self.sync_s = sync_s
        self._insert = pg_insert if database.dialect == "postgresql" else sqlite_insert
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    def _windows(self, now: float) -> tuple[int, int]:
        current = int(now // self.seconds) * self.seconds
        return current, current - self.seconds

    def _used(self, now: float, current: int, before: float, hits: float) -> float:
        """A caller's sliding-window count: the previous window's hits, weighted by how much of that
        window still counts, plus the current window's."""
        return before * (1.0 - (now - current) / self.seconds) + hits

    def admit(self, client: str) -> bool:
        """Admit a request from what this process holds (never blocks); False when the database must
        count it (`hit`): counts older than `sync_s`, a new window, or a caller near its limit."""
        now = time.time()
        current, previous = self._windows(now)
        with self._lock:
            held = self._held.get(client)
            if held is None or held.window != current or now - held.read_at >= self.sync_s:
                return False
            used = self._used(now, current, held.stored[1] + held.since[previous], held.stored[0] + held.since[current])
            if used + 1 > self.amount:
                return False
            held.since[current] += 1
            return True

    def hit(self, client: str) -> bool:
        """Count a request (and the hits this process admitted since its last count) in the database;
        False (and the request not counted) if it is over the limit. Blocking."""
        now = time.time()
        current, previous = self._windows(now)
        with self._lock:
            held = self._held.pop(client, None)
        since = held.since if held else Counter[int]()
        mine = (rate_windows.c.client == client, rate_windows.c.window_start == current)
        with self.database.write(durable=False) as db:  # a count lost in a power cut costs nothing
            if since[previous]:
                self._count(db, client, previous, since[previous])
            hits = self._count(db, client, current, since[current] + 1)
            before = db.execute(
                select(rate_windows.c.hits).where(
                    rate_windows.c.client == client, rate_windows.c.window_start == previous
                )
            ).scalar()
            db.execute(
                delete(rate_windows).where(rate_windows.c.client == client, rate_windows.c.window_start < previous)
            )
            admitted = self._used(now, current, before or 0, hits) <= self.amount
            if not admitted:
                db.execute(update(rate_windows).where(*mine).values(hits=rate_windows.c.hits - 1))
                hits -= 1
        if self.sync_s:
            with self._lock:
                self._forget(now)
                self._held[client] = _Held(now, current, (hits, before or 0))
        return admitted

    def _count(self, db: Connection, client: str, window: int, hits: int) -> int:
        """Add `hits` to a window's count; its new total."""
        row = self._insert(rate_windows).values(client=client, window_start=window, hits=hits)
        counted = row.on_conflict_do_update(
            index_elements=["client", "window_start"], set_={"hits": rate_windows.c.hits + hits}
        ).returning(rate_windows.c.hits)
        return int(db.execute(counted).scalar_one())

    def _forget(self, now: float) -> None:
        """Drop callers whose counts are too old to use (a caller's own hits since are then never
        written: at most `sync_s` worth, which only the other processes miss)."""
        if len(self._held) > 1024:
            self._held = {c: h for c, h in self._held.items() if now - h.read_at < self.sync_s}

    def window(self, client: str) -> tuple[int, float]:
        """(requests the client has left now, unix time the current window ends); this process's hits
        not yet written count too. Blocking."""
        now = time.time()
        current, previous = self._windows(now)
        with self.database.read() as db:
            query = select(rate_windows.c.window_start, rate_windows.c.hits).where(
                rate_windows.c.client == client, rate_windows.c.window_start >= previous
            )
            rows = {start: hits for start, hits in db.execute(query)}
        with self._lock:
            held = self._held.get(client)
            since = Counter(held.since) if held else Counter[int]()
        before = rows.get(previous, 0) + since[previous]
        used = self._used(now, current, before, rows.get(current, 0) + since[current])
        left = max(0, math.floor(self.amount - used))
        return left, float(current + self.seconds)
