"""The library's SQLite database, as every table's owner opens it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for one operation (cheap for SQLite, and safe from any thread), in autocommit mode
    so each statement is its own transaction unless the caller begins one; write-ahead log, fully synced,
    rows by column name.
    """
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.row_factory = sqlite3.Row
        yield db
    finally:
        db.close()
