"""Rate-limit windows counted in the library's database, so that every process serving one library
(Ray Serve replicas, servers behind a load balancer) counts a caller's requests together.

A sliding-window counter, as `limits`' SlidingWindowCounter counts: requests in the current fixed
window, plus those of the previous window weighted by how much of it still overlaps the last
`seconds`. Each hit is one transaction: count it, and take it back if it went over.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import Column, Integer, Table, Text, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .database import Database, metadata

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("client", Text, primary_key=True),
    Column("window_start", Integer, primary_key=True),  # unix seconds, a multiple of the window
    Column("hits", Integer, nullable=False),
)


class SharedWindows:
    """`amount` requests per `seconds` per client, counted in `database`."""

    def __init__(self, database: Database, amount: int, seconds: int) -> None:
        self.database = database
        self.amount = amount
        self.seconds = seconds
        self._insert = pg_insert if database.dialect == "postgresql" else sqlite_insert

    def _weight(self, now: float, current: int) -> float:
        """How much of the previous window still counts."""
        return 1.0 - (now - current) / self.seconds

    def hit(self, client: str) -> bool:
        """Count a request; False (and not counted) if it is over the limit. Blocking."""
        now = time.time()
        current = int(now // self.seconds) * self.seconds
        previous = current - self.seconds
        row = self._insert(rate_windows).values(client=client, window_start=current, hits=1)
        counted = row.on_conflict_do_update(
            index_elements=["client", "window_start"], set_={"hits": rate_windows.c.hits + 1}
        ).returning(rate_windows.c.hits)
        mine = (rate_windows.c.client == client, rate_windows.c.window_start == current)
        with self.database.write(durable=False) as db:  # a count lost in a power cut costs nothing
            hits = int(db.execute(counted).scalar_one())
            before = db.execute(
                select(rate_windows.c.hits).where(
                    rate_windows.c.client == client, rate_windows.c.window_start == previous
                )
            ).scalar()
            db.execute(
                delete(rate_windows).where(rate_windows.c.client == client, rate_windows.c.window_start < previous)
            )
            if (before or 0) * self._weight(now, current) + hits <= self.amount:
                return True
            db.execute(update(rate_windows).where(*mine).values(hits=rate_windows.c.hits - 1))
            return False

    def window(self, client: str) -> tuple[int, float]:
        """(requests the client has left now, unix time the current window ends). Blocking."""
        now = time.time()
        current = int(now // self.seconds) * self.seconds
        with self.database.read() as db:
            query = select(rate_windows.c.window_start, rate_windows.c.hits).where(
                rate_windows.c.client == client, rate_windows.c.window_start >= current - self.seconds
            )
            rows = {start: hits for start, hits in db.execute(query)}
        used = rows.get(current - self.seconds, 0) * self._weight(now, current) + rows.get(current, 0)
        left = max(0, math.floor(self.amount - used))
        return left, float(current + self.seconds)
