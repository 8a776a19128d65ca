"""The library's database, by URL: SQLite in the data directory (the default) or PostgreSQL shared by
many machines (`VOXCLONE_DATABASE_URL=postgresql://...`, with the `scale` extra).

Every table's owner declares its table on `metadata` (voices.py, jobs.py, blobs.py, ...) and adds one
Alembic revision under voxclone/migrations/versions; opening a `Database` brings the schema up to date.
Access is SQLAlchemy Core (no ORM): each owner writes its own statements.

SQLite keeps today's guarantees: write-ahead log, fully synced, every change one transaction; a
transaction that writes takes the write lock when it begins (BEGIN IMMEDIATE), so two processes never
interleave a read-then-write, and readers never wait for writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

from .errors import BadInput

metadata = MetaData()
_WRITE = "voxclone_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_LOSSY = "voxclone_lossy"  # execution option: this write may be lost in a power cut (never half-made)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _normalised(url: str) -> str:
    """`postgresql://` means psycopg 3 (the `scale` extra); SQLite needs no driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise BadInput(
            f"database URL {parsed.render_as_string()!r}: voxclone stores its library in sqlite:/// or postgresql://"
        )
    return parsed.render_as_string(hide_password=False)


class Database:
    """One connection pool for a URL; `read()` and `write()` give a connection inside one transaction."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = _normalised(url)
        self.engine = _engine(self.url)
        self.dialect = self.engine.dialect.name  # "sqlite" or "postgresql"
        if migrate:
            from .migrations import upgrade

            try:
                upgrade(self)
            except BaseException:
                self.engine.dispose()
                raise

    @property
    def shared(self) -> bool:
        """Whether other machines may use this database (PostgreSQL), rather than only this one."""
        return self.dialect != "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A transaction that writes. `durable=False` skips the wait for the disk at commit, for writes
        worth nothing after a crash (request counts): still all-or-nothing, only possibly lost."""
        options = {_WRITE: True, _LOSSY: not durable}
        with self.engine.connect().execution_options(**options) as connection, connection.begin():
            if not durable and self.dialect == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield connection

    def close(self) -> None:
        """Close the pool's connections. A thread still finishing (an enrolment stopping) may still use
        the database afterwards, on a connection of its own each time, that nothing has to close."""
        pooled, self.engine = self.engine, _engine(self.url, pooled=False)
        # A connection such a thread returns to the old pool later is closed then, not left to the GC.
        event.listen(pooled.pool, "checkin", _close_connection)
        pooled.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"


def _engine(url: str, *, pooled: bool = True) -> Engine:
    """A pool of connections (checked before use on PostgreSQL: one the server closed is replaced, not
    handed out); unpooled, each transaction opens and closes its own."""
    sqlite = make_url(url).get_backend_name() == "sqlite"
    options: dict[str, Any] = (
        {"poolclass": NullPool} if not pooled else {"poolclass": QueuePool, "pool_size": 5, "max_overflow": 20}
    )
    if not sqlite:
        return create_engine(url, pool_pre_ping=pooled, **options)
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _close_connection(dbapi_connection: Any, _record: Any) -> None:
    if dbapi_connection is not None:
        dbapi_connection.close()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is turned off so that BEGIN is ours (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    options = connection.get_execution_options()
    if options.get(_WRITE):
        # WAL with synchronous=NORMAL leaves the commit's fsync to the next checkpoint (set outside any
        # transaction, so before BEGIN; every write sets it, so a pooled connection never keeps it).
        connection.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if options.get(_LOSSY) else 'FULL'}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")
