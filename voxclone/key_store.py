"""API keys of a library in a shared database (PostgreSQL): the same records as the keys file
(voxclone.auth.KeysFile), as rows, so every process serving the library accepts the same keys and a
key created or revoked anywhere takes effect everywhere within `REFRESH_S`.
"""

from __future__ import annotations

import time

from sqlalchemy import Column, Float, Table, Text, delete, insert, select

from .auth import KeyRecord, KeysFile, Scope, new_key
from .database import Database, metadata
from .errors import BadInput
from .settings import Settings

REFRESH_S = 2.0  # how stale a running server's view of the keys may be

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("digest", Text, nullable=False, unique=True),
    Column("scopes", Text, nullable=False),  # comma-separated
    Column("created_at", Float, nullable=False),
)


class DatabaseKeys:
    """Keys as rows; the interface of KeysFile (load, create, revoke, stamp)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def where(self) -> str:
        return "the library's database"

    def load(self) -> list[KeyRecord]:
        with self.database.read() as db:
            rows = db.execute(select(api_keys).order_by(api_keys.c.created_at)).fetchall()
        return [KeyRecord(r.id, r.name, r.digest, tuple(r.scopes.split(",")), r.created_at) for r in rows]

    def create(self, name: str, scope: Scope) -> tuple[str, KeyRecord]:
        key, record = new_key(name, scope)
        row = {
            "id": record.id,
            "name": name,
            "digest": record.digest,
            "scopes": ",".join(record.scopes),
            "created_at": record.created_at,
        }
        with self.database.write() as db:
            db.execute(insert(api_keys).values(row))
        return key, record

    def revoke(self, key_id: str) -> KeyRecord:
        record = next((r for r in self.load() if r.id == key_id), None)
        with self.database.write() as db:
            gone = db.execute(delete(api_keys).where(api_keys.c.id == key_id)).rowcount
        if record is None or not gone:
            raise BadInput(f"no key with id {key_id!r}; `voxclone keys list` shows them")
        return record

    def stamp(self) -> object:
        """Changes every REFRESH_S, so a key ring re-reads the keys that often."""
        return int(time.monotonic() / REFRESH_S)


def open_keys(settings: Settings, database: Database) -> KeysFile | DatabaseKeys:
    """The keys of this library: rows of a shared database, else the keys file (DATA_DIR/keys.json)."""
    return DatabaseKeys(database) if database.shared else KeysFile(settings.keys_path)
