"""The voice library: stock and cloned voices in the library's database (voxclone.database), with each
voice's files in its blob store (voxclone.blobs: a folder per voice, rows of a shared database, or a bucket).

Every change is one transaction; files are written atomically and a voice's row exists before any of
its files, so a crash at any moment leaves either the old voice or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Column, ColumnElement, Float, Integer, Row, Table, Text, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .blobs import BlobStore
from .database import Database, metadata
from .engines import Engines, VoiceSpec
from .errors import BadInput, LimitExceeded, VoiceConflict, VoiceNotFound, VoiceNotReady

Status = Literal["ready", "enrolling", "failed"]
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_JSON_FIELDS = ("params", "labels", "scores", "settings", "filters")

voices = Table(
    "voices",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),  # compared without case (SQLite: COLLATE NOCASE; PostgreSQL: lower())
    Column("engine", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("labels", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("status", Text, nullable=False),
    Column("progress", Float, nullable=False),
    Column("error", Text),
    Column("version", Integer, nullable=False),
    Column("scores", Text, nullable=False),
    Column("settings", Text, nullable=False),
    Column("filters", Text, nullable=False),
    Column("tier", Text, nullable=False),
)


@dataclass(frozen=True)
class Voice:
    """One voice as stored. `version` changes whenever its sound changes (re-enrolment, new samples)."""

    id: str
    name: str
    engine: str
    category: str  # "premade" (stock), "cloned", or "file" (a model a user pointed at on disk)
    params: dict[str, Any]
    labels: dict[str, str]
    description: str
    created_at: float
    status: Status
    progress: float
    error: str | None
    version: int
    scores: dict[str, Any] = field(default_factory=dict)
    filters: list[dict[str, Any]] = field(default_factory=list)  # the voice's filter chain (voxclone.filters)
    tier: str = ""  # the cloning tier the voice speaks with now ("" for stock and file voices)
    settings: dict[str, Any] = field(default_factory=dict)  # speed, and ElevenLabs' stored voice settings
    files_dir: Path | None = None

    def spec(self) -> VoiceSpec:
        return VoiceSpec(id=self.id, version=self.version, params=self.params, files_dir=self.files_dir)

    @property
    def speed(self) -> float:
        """The speed requests get when they name none."""
        return float(self.settings.get("speed") or 1.0)

    def require_ready(self) -> None:
        if self.status == "enrolling":
            raise VoiceNotReady(
                f"voice {self.name!r} is still enrolling ({self.progress:.0%}); try again when it is ready"
            )
        if self.status == "failed":
            raise VoiceNotReady(f"voice {self.name!r} failed to enrol: {self.error or 'unknown error'}")


def new_voice_id() -> str:
    return secrets.token_hex(10)


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise BadInput("a voice name is 1-100 printable characters")
    return name


class VoiceLibrary:
    """Voices in `database`, their files in `blobs`."""

    def __init__(self, database: Database, blobs: BlobStore, max_voices: int = 1000) -> None:
        self.database = database
        self.blobs = blobs
        self.max_voices = max_voices

    def _voice(self, row: Row[Any]) -> Voice:
        data = dict(row._mapping)
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key])
        # Stock voices have no files: never looked for (in a bucket, each look is a request).
        files_dir = None if data["category"] == "premade" else self.blobs.local_dir(data["id"], data["version"])
        return Voice(**data, files_dir=files_dir)

    def _named(self, name: str) -> ColumnElement[bool]:
        if self.database.dialect == "sqlite":
            return voices.c.name == name  # the column's NOCASE collation, and its index
        return func.lower(voices.c.name) == name.lower()

    def get(self, id_or_name: str) -> Voice:
        """A voice by id, else by name (case-insensitive). A name several voices share is a
        VoiceConflict naming their ids: speaking in a voice picked by guess would be worse.
        """
        with self.database.read() as db:
            rows = db.execute(select(voices).where(voices.c.id == id_or_name)).fetchall()
            if not rows:
                rows = db.execute(
                    select(voices).where(self._named(id_or_name)).order_by(voices.c.created_at)
                ).fetchall()
        if not rows:
            raise VoiceNotFound(f"no voice named {id_or_name[:100]!r}; GET /v1/voices lists them")
        if len(rows) > 1:
            ids = ", ".join(row.id for row in rows[:10])
            raise VoiceConflict(f"{len(rows)} voices are named {id_or_name[:100]!r}; use a voice id instead: {ids}")
        return self._voice(rows[0])

    def exists(self, voice_id: str) -> bool:
        with self.database.read() as db:
            return db.execute(select(voices.c.id).where(voices.c.id == voice_id)).first() is not None

    def all(self) -> list[Voice]:
        query = select(voices).order_by(voices.c.category.desc(), voices.c.created_at, voices.c.name)
        with self.database.read() as db:
            rows = db.execute(query).fetchall()
        return [self._voice(r) for r in rows]

    def count(self, category: str | None = None) -> int:
        query = select(func.count()).select_from(voices)
        if category is not None:
            query = query.where(voices.c.category == category)
        with self.database.read() as db:
            return int(db.execute(query).scalar_one())

    def create(
        self,
        *,
        name: str,
        engine: str,
        params: dict[str, Any],
        category: str,
        voice_id: str | None = None,
        labels: dict[str, str] | None = None,
        description: str = "",
        status: Status = "ready",
        filters: list[dict[str, Any]] | None = None,
        tier: str = "",
    ) -> Voice:
        """Insert a voice. Names may repeat (as on ElevenLabs); an id already taken is a VoiceConflict."""
        voice_id = voice_id or new_voice_id()
        if not _ID.match(voice_id):
            raise BadInput(f"invalid voice id {voice_id!r}")
        name = check_name(name)
        if category == "cloned" and self.count("cloned") >= self.max_voices:
            raise LimitExceeded(
                f"the library holds its limit of {self.max_voices} voices; delete one first", limit="max_voices"
            )
        row = {
            "id": voice_id,
            "name": name,
            "engine": engine,
            "category": category,
            "params": json.dumps(params),
            "labels": json.dumps(labels or {}),
            "description": description,
            "created_at": time.time(),
            "status": status,
            "progress": 1.0 if status == "ready" else 0.0,
            "error": None,
            "version": 1,
            "scores": "{}",
            "settings": "{}",
            "filters": json.dumps(filters or []),
            "tier": tier,
        }
        try:
            with self.database.write() as db:
                db.execute(insert(voices).values(row))
        except IntegrityError as e:
            raise VoiceConflict(f"a voice with id {voice_id!r} already exists") from e
        return self.get(voice_id)

    def update(self, voice_id: str, *, bump_version: bool = False, **fields: Any) -> Voice:
        """Change some fields in one transaction; `bump_version` marks the voice's sound as changed."""
        allowed = {
            "name",
            "engine",
            "params",
            "labels",
            "description",
            "status",
            "progress",
            "error",
            "scores",
            "settings",
            "filters",
            "tier",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        values: dict[str, Any] = {k: json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()}
        if bump_version:
            values["version"] = voices.c.version + 1
        if not values:
            return self.get(voice_id)
        with self.database.write() as db:
            changed = db.execute(update(voices).where(voices.c.id == voice_id).values(values)).rowcount
        if changed == 0:
            raise VoiceNotFound(f"no voice with id {voice_id!r}")
        return self.get(voice_id)

    def delete(self, voice_id: str) -> Voice:
        """Remove a voice and its files. The row goes first: a crash in between leaves only stray files."""
        voice = self.get(voice_id)
        with self.database.write() as db:
            db.execute(delete(voices).where(voices.c.id == voice.id))
        if voice.category != "premade":
            self.blobs.delete_voice(voice.id)
        return voice

    def interrupted(self) -> list[Voice]:
        """Voices left `enrolling` by a process that stopped mid-enrolment."""
        with self.database.read() as db:
            rows = db.execute(select(voices).where(voices.c.status == "enrolling")).fetchall()
        return [self._voice(r) for r in rows]

    def sweep_orphans(self) -> None:
        """Delete files no voice owns (left by a crash during a delete or a failed create)."""
        self.blobs.sweep(self.exists)


def install_voices(library: VoiceLibrary, engines: Engines, extra_paths: list[Path]) -> None:
    """Stock voices of every engine, and voice model files the settings point at, as library entries.

    Runs at every start: new stock voices appear, and an on-disk voice follows its file's path.
    """
    existing = {v.id: v for v in library.all()}
    for name, engine in engines.items():
        for stock in engine.stock_voices():
            if stock.name not in existing:
                with contextlib.suppress(VoiceConflict):  # another process sharing the library added it meanwhile
                    library.create(
                        voice_id=stock.name,
                        name=stock.name,
                        engine=name,
                        params=stock.params,
                        category="premade",
                        labels=stock.labels,
                        description=stock.description,
                    )
    for path in extra_paths:
        engine_name, params = engines.voice_from_file(path)
        engines[engine_name].check_voice(params, None)
        voice_id = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:64]
        if voice_id in existing:
            library.update(
                voice_id, engine=engine_name, params=params, bump_version=existing[voice_id].params != params
            )
        else:
            library.create(
                voice_id=voice_id,
                name=voice_id,
                engine=engine_name,
                params=params,
                category="file",
                description=f"from {path.name}",
            )
