"""The voice library's SQLite schema, as numbered steps; `PRAGMA user_version` says which have run.

Opening a library runs the steps it has not seen, all in one transaction: a crash or a second
process opening the same file at the same moment leaves either the old schema or the new one, with
every voice in it. Steps are only ever appended, never edited.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

# The original columns; each step says what it changes. Steps are history: never edit one.
_V1 = (
    "id TEXT PRIMARY KEY",
    "name TEXT NOT NULL UNIQUE COLLATE NOCASE",
    "engine TEXT NOT NULL",
    "category TEXT NOT NULL",
    "params TEXT NOT NULL",
    "labels TEXT NOT NULL",
    "description TEXT NOT NULL",
    "created_at REAL NOT NULL",
    "status TEXT NOT NULL",
    "progress REAL NOT NULL",
    "error TEXT",
    "version INTEGER NOT NULL",
    "scores TEXT NOT NULL",
)
_V1_NAMES = ", ".join(column.split()[0] for column in _V1)
# Version 2: names may repeat, as on ElevenLabs (ids tell voices apart), and each voice keeps its
# settings (speed, and ElevenLabs' voice settings).
_V2 = (*(column.replace(" UNIQUE", "") for column in _V1), "settings TEXT NOT NULL DEFAULT '{}'")



def _filters_from_post(post: dict[str, Any]) -> list[dict[str, Any]]:
    """Before step 3 a cloned voice kept its filters inside its engine params, as `post`."""
    filters: list[dict[str, Any]] = []
    if "shape" in post:
        filters.append({"kind": "shape", **post["shape"]})
    if "eq_db" in post:
        filters.append({"kind": "equaliser", "gains_db": post["eq_db"]})
    return filters


def _move_post_into_filters(db: sqlite3.Connection) -> None:
    for voice_id, params_json in db.execute("SELECT id, params FROM voices").fetchall():
        params = json.loads(params_json)
        if "post" in params:
            filters = _filters_from_post(params.pop("post"))
            db.execute(
                "UPDATE voices SET params = ?, filters = ?, tier = 'instant' WHERE id = ?",
                (json.dumps(params), json.dumps(filters), voice_id),
            )


Step = tuple[str | Callable[[sqlite3.Connection], None], ...]
STEPS: tuple[Step, ...] = (
    # 1: the original table (databases made before versioning already have it, with user_version 0).
    (f"CREATE TABLE IF NOT EXISTS voices ({', '.join(_V1)})",),
    # 2: SQLite cannot drop a UNIQUE constraint: rebuild the table, copying every voice.
    (
        f"CREATE TABLE voices_v2 ({', '.join(_V2)})",
        f"INSERT INTO voices_v2 ({_V1_NAMES}) SELECT {_V1_NAMES} FROM voices",
        "DROP TABLE voices",
        "ALTER TABLE voices_v2 RENAME TO voices",
        "CREATE INDEX voices_by_name ON voices (name)",
    ),
    # 3: a voice's filter chain (applied after any engine) and the cloning tier it speaks with.
    (
        "ALTER TABLE voices ADD COLUMN filters TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE voices ADD COLUMN tier TEXT NOT NULL DEFAULT ''",
        _move_post_into_filters,
    ),
)
VERSION = len(STEPS)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema up to VERSION in one transaction; returns the version found. `db` is in autocommit mode."""
    db.execute("BEGIN IMMEDIATE")  # the write lock first, so two processes never both migrate
    try:
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if found > VERSION:
            raise RuntimeError(
                f"the voice library was written by a newer voxclone (schema {found}, this one knows {VERSION})"
            )
        for step in STEPS[found:]:
            for statement in step:
                if callable(statement):
                    statement(db)
                else:
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found
