"""The audit log: who created and deleted which voice, and every consent decision, in order.

Entries are rows of the library's database (the `audit` table), so every process and machine given the
library's URL appends to one trail and reads all of it. Each entry is committed, durably, before
`record` returns, so an entry that was acknowledged survives a crash. Nothing in voxclone updates or
deletes a row (and the table's triggers refuse to). Entries hold ids, names, scores and key ids (the
short digest `voxclone keys list` shows), never a key, a recording or a user's text.

Before, each process appended JSON lines to DATA_DIR/audit.jsonl. The first time the log is opened on a
machine that has such a file, its entries are imported (with their own times) and the file is renamed
`audit.jsonl.imported`; an `audit.imported` entry records the import and the file's digest, so a file
imported once is never imported again, even after a crash before the rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Float, Integer, Table, Text, insert, select, text, tuple_

from .database import Database, metadata

log = logging.getLogger("voxclone.audit")

# Field names that could only carry a secret or someone's words; refused outright rather than logged.
_FORBIDDEN = frozenset({"key", "api_key", "token", "secret", "password", "text", "transcript", "audio"})
_PAGE = 1000  # entries read per query: a long trail is read a page at a time, never held whole
_IMPORTED = "audit.imported"
_IMPORT_LOCK = 0x766F7861  # PostgreSQL advisory lock key: one process at a time imports a file ("voxa")

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("event", Text, nullable=False),
    Column("details", Text, nullable=False),  # a JSON object
)


@dataclass(frozen=True)
class Entry:
    """One audit record: when (Unix seconds), what happened, and its details."""

    time: float
    event: str
    details: dict[str, Any]

    def line(self) -> str:
        """One human-readable line (what `voxclone audit` prints)."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.time))
        fields = "  ".join(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in self.details.items())
        return f"{when}Z  {self.event:<17}  {fields}".rstrip()

    def json(self) -> dict[str, Any]:
        """The entry as one JSON object (what `voxclone audit --json` prints, one per line)."""
        return {"time": self.time, "event": self.event, **self.details}


class AuditLog:
    """The library's append-only audit trail; safe to share between threads, processes and machines.

    `legacy_file` is this machine's audit.jsonl from before the trail moved into the database: imported
    now if it is there."""

    def __init__(self, database: Database, legacy_file: Path | None = None) -> None:
        self.database = database
        if legacy_file is not None:
            import_file(database, legacy_file)

    def record(self, event: str, **details: Any) -> Entry:
        """Append one entry, committed durably. Raises ValueError for a field that could hold a secret."""
        leaked = _FORBIDDEN.intersection(details)
        if leaked:
            raise ValueError(f"audit entries never hold {sorted(leaked)}")
        entry = Entry(time=round(time.time(), 3), event=event, details=details)
        with self.database.write() as db:
            _append(db, [entry])
        return entry

    def entries(self, since: float = 0.0) -> Iterator[Entry]:
        """Every entry from `since` (Unix seconds) on, oldest first."""
        after: tuple[float, int] = (since, -1)
        while True:
            query = (
                select(audit.c.id, audit.c.time, audit.c.event, audit.c.details)
                .where(tuple_(audit.c.time, audit.c.id) > tuple_(*after))
                .order_by(audit.c.time, audit.c.id)
                .limit(_PAGE)
            )
            with self.database.read() as db:
                rows = db.execute(query).fetchall()
            for row_id, when, event, details in rows:
                after = (when, row_id)
                yield Entry(float(when), str(event), json.loads(details))
            if len(rows) < _PAGE:
                return

    def voice_ids(self) -> set[str]:
        """Every voice id the log has seen created (deleted ones included): who a watermark may name."""
        query = select(audit.c.details).where(audit.c.event == "voice.created")
        with self.database.read() as db:
            found = (json.loads(details) for details in db.execute(query).scalars())
            return {str(d["voice_id"]) for d in found if "voice_id" in d}


def _append(db: Connection, entries: list[Entry]) -> None:
    rows = [{"time": e.time, "event": e.event, "details": json.dumps(e.details, ensure_ascii=False)} for e in entries]
    db.execute(insert(audit), rows)


def _parse_lines(data: bytes) -> list[Entry]:
    """The entries of an audit.jsonl, in order; a line a crash cut short is skipped."""
    entries = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        try:
            fields = json.loads(raw)
            entries.append(Entry(float(fields.pop("time")), str(fields.pop("event")), fields))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return entries


def import_file(database: Database, path: Path) -> int:
    """Import an audit.jsonl (as voxclone wrote it per process) into the trail, then rename it
    `<name>.imported`; returns how many entries were imported (0 if there is no such file, or it was
    imported before). Processes starting at once on one data dir (Ray's replicas) import it once."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # none, or another process has just imported and renamed it
        return 0
    digest = hashlib.sha256(data).hexdigest()
    entries = _parse_lines(data)
    with database.write() as db:
        if database.dialect == "postgresql":  # two processes starting at once: one imports, the other sees it
            db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK})
        done = select(audit.c.details).where(audit.c.event == _IMPORTED)
        if any(json.loads(d).get("sha256") == digest for d in db.execute(done).scalars()):
            entries = []
        else:
            marker = Entry(
                round(time.time(), 3),
                _IMPORTED,
                {"file": str(path), "host": socket.gethostname(), "entries": len(entries), "sha256": digest},
            )
            _append(db, [*entries, marker])
    with contextlib.suppress(FileNotFoundError):  # renamed by another process that found it imported too
        os.replace(path, path.with_name(f"{path.name}.imported"))
    if entries:
        log.info("imported %d audit entries from %s into the library's database", len(entries), path)
    return len(entries)
