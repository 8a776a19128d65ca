"""The voice library: stock and cloned voices in SQLite, with each voice's files in its own folder.

Every change is one SQLite transaction; files are written to a temporary folder and renamed into
place, so a crash at any moment leaves either the old voice or the new one, never half of each.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .database import connect
from .engines import Engines, VoiceSpec
from .errors import BadInput, LimitExceeded, VoiceConflict, VoiceNotFound, VoiceNotReady
from .migrations import migrate

Status = Literal["ready", "enrolling", "failed"]
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_JSON_FIELDS = ("params", "labels", "scores", "settings", "filters")


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
            raise VoiceNotReady(f"voice {self.name!r} is still enrolling ({self.progress:.0%}); try again when it is ready")
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
    """Voices in `db_path`, their files under `voices_dir/<id>/`."""

    def __init__(self, db_path: Path, voices_dir: Path, max_voices: int = 1000) -> None:
        self.db_path = db_path
        self.voices_dir = voices_dir
        self.max_voices = max_voices
        voices_dir.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            migrate(db)

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.db_path)

    def _voice(self, row: sqlite3.Row) -> Voice:
        data = dict(row)
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key])
        folder = self.voices_dir / data["id"]
        return Voice(**data, files_dir=folder if folder.is_dir() else None)

    def files_dir(self, voice_id: str) -> Path:
        if not _ID.match(voice_id):
            raise BadInput(f"invalid voice id {voice_id!r}")
        return self.voices_dir / voice_id

    def get(self, id_or_name: str) -> Voice:
        """A voice by id, else by name (case-insensitive). A name several voices share is a
        VoiceConflict naming their ids: speaking in a voice picked by guess would be worse.
        """
        with self._db() as db:
            rows = db.execute("SELECT * FROM voices WHERE id = ?", (id_or_name,)).fetchall()
            if not rows:
                rows = db.execute("SELECT * FROM voices WHERE name = ? ORDER BY created_at", (id_or_name,)).fetchall()
        if not rows:
            raise VoiceNotFound(f"no voice named {id_or_name[:100]!r}; GET /v1/voices lists them")
        if len(rows) > 1:
            ids = ", ".join(row["id"] for row in rows[:10])
            raise VoiceConflict(f"{len(rows)} voices are named {id_or_name[:100]!r}; use a voice id instead: {ids}")
        return self._voice(rows[0])

    def exists(self, voice_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM voices WHERE id = ?", (voice_id,)).fetchone() is not None

    def all(self) -> list[Voice]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM voices ORDER BY category DESC, created_at, name").fetchall()
        return [self._voice(r) for r in rows]

    def count(self, category: str | None = None) -> int:
        with self._db() as db:
            if category is None:
                return int(db.execute("SELECT COUNT(*) FROM voices").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM voices WHERE category = ?", (category,)).fetchone()[0])

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
            raise LimitExceeded(f"the library holds its limit of {self.max_voices} voices; delete one first", limit="max_voices")
        row = {
            "id": voice_id, "name": name, "engine": engine, "category": category,
            "params": json.dumps(params), "labels": json.dumps(labels or {}), "description": description,
            "created_at": time.time(), "status": status, "progress": 1.0 if status == "ready" else 0.0,
            "error": None, "version": 1, "scores": "{}", "filters": json.dumps(filters or []), "tier": tier,
        }
        try:
            with self._db() as db:
                db.execute(f"INSERT INTO voices ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        except sqlite3.IntegrityError as e:
            raise VoiceConflict(f"a voice with id {voice_id!r} already exists") from e
        return self.get(voice_id)

    def update(self, voice_id: str, *, bump_version: bool = False, **fields: Any) -> Voice:
        """Change some fields in one transaction; `bump_version` marks the voice's sound as changed."""
        allowed = {"name", "engine", "params", "labels", "description", "status", "progress", "error", "scores", "settings", "filters", "tier"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        values = {k: json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()}
        sets = [f"{k} = ?" for k in values] + (["version = version + 1"] if bump_version else [])
        if not sets:
            return self.get(voice_id)
        with self._db() as db:
            cursor = db.execute(f"UPDATE voices SET {', '.join(sets)} WHERE id = ?", (*values.values(), voice_id))
        if cursor.rowcount == 0:
            raise VoiceNotFound(f"no voice with id {voice_id!r}")
        return self.get(voice_id)

    def delete(self, voice_id: str) -> Voice:
        """Remove a voice and its files. The row goes first: a crash in between leaves only stray files."""
        voice = self.get(voice_id)
        with self._db() as db:
            db.execute("DELETE FROM voices WHERE id = ?", (voice.id,))
        if voice.category != "premade":
            shutil.rmtree(self.voices_dir / voice.id, ignore_errors=True)
        return voice

    def interrupted(self) -> list[Voice]:
        """Voices left `enrolling` by a process that stopped mid-enrolment."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM voices WHERE status = 'enrolling'").fetchall()
        return [self._voice(r) for r in rows]


def install_voices(library: VoiceLibrary, engines: Engines, extra_paths: list[Path]) -> None:
    """Stock voices of every engine, and voice model files the settings point at, as library entries.

    Runs at every start: new stock voices appear, and an on-disk voice follows its file's path.
    """
    existing = {v.id: v for v in library.all()}
    for name, engine in engines.items():
        for stock in engine.stock_voices():
            if stock.name not in existing:
                library.create(
                    voice_id=stock.name, name=stock.name, engine=name, params=stock.params,
                    category="premade", labels=stock.labels, description=stock.description,
                )
    for path in extra_paths:
        engine_name, params = engines.voice_from_file(path)
        engines[engine_name].check_voice(params, None)
        voice_id = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:64]
        if voice_id in existing:
            library.update(voice_id, engine=engine_name, params=params, bump_version=existing[voice_id].params != params)
        else:
            library.create(
                voice_id=voice_id, name=voice_id, engine=engine_name, params=params, category="file",
                description=f"from {path.name}",
            )
