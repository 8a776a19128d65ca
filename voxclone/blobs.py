"""Where a voice's files live: the files a cloner made for its engine, and its reference samples.

`FileBlobs` keeps them in the data directory, one folder per voice (`voices/<id>/`), as voxclone always
has. `DatabaseBlobs` keeps them as rows of the library's database, so every machine given the database
URL has every voice; engines read files from a folder, so a machine writes a voice's engine files out
once per voice version (`local_dir`) into a local folder, atomically, before speaking with it.

Names are relative paths inside a voice (`voice.tone.npz`, `samples/<id>.wav`); `samples/` holds the
recordings a voice was cloned from, which engines never read.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Column, Float, Integer, LargeBinary, Table, Text, delete, insert, select, text

from .database import Database, metadata
from .files import atomic_write

SAMPLES = "samples/"
_NAME = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEPT_EMPTY = 4096  # (voice, version) pairs remembered to have no engine files, so none is looked up twice

blobs = Table(
    "blobs",
    metadata,
    Column("voice_id", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)


def check_name(name: str) -> str:
    """A file name inside a voice: relative, no `..`, no hidden parts (temporary files are hidden)."""
    if not _NAME.match(name):
        raise ValueError(f"a voice file name must be a plain relative path, not {name!r}")
    return name


class BlobStore(ABC):
    """A voice's files by name. Each `put` is all-or-nothing per file, written in the order given."""

    @abstractmethod
    def put(self, voice_id: str, files: Mapping[str, bytes]) -> None: ...

    @abstractmethod
    def get(self, voice_id: str, name: str) -> bytes | None: ...

    @abstractmethod
    def names(self, voice_id: str, prefix: str = "") -> list[str]:
        """The names of a voice's files that start with `prefix`, sorted."""

    @abstractmethod
    def delete_voice(self, voice_id: str) -> None: ...

    @abstractmethod
    def local_dir(self, voice_id: str, version: int) -> Path | None:
        """A folder on this machine holding the voice's engine files at `version`, or None if it has none."""

    @abstractmethod
    def workdir(self, voice_id: str, tier: str) -> Path:
        """A folder on this machine where a cloner may keep checkpoints of a voice's enrolment."""

    @abstractmethod
    def sweep(self, exists: Callable[[str], bool]) -> None:
        """Delete the files of voices that no longer exist (left by a crash during a delete).

        A voice's row is committed before any of its files is written, so files seen first and then
        found without a row belong to a deleted voice, whatever other processes do meanwhile.
        """


class FileBlobs(BlobStore):
    """Files under `root/<voice id>/`, each written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, voice_id: str, files: Mapping[str, bytes]) -> None:
        for name, data in files.items():
            path = self.root / voice_id / check_name(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)

    def get(self, voice_id: str, name: str) -> bytes | None:
        path = self.root / voice_id / check_name(name)
        return path.read_bytes() if path.is_file() else None

    def names(self, voice_id: str, prefix: str = "") -> list[str]:
        folder = self.root / voice_id
        start = folder / prefix.rpartition("/")[0]  # only the folder the prefix names is walked
        if not start.is_dir():
            return []
        found = (p.relative_to(folder).as_posix() for p in start.rglob("*") if p.is_file())
        return sorted(n for n in found if n.startswith(prefix) and _NAME.match(n))

    def delete_voice(self, voice_id: str) -> None:
        shutil.rmtree(self.root / voice_id, ignore_errors=True)

    def local_dir(self, voice_id: str, version: int) -> Path | None:
        folder = self.root / voice_id
        return folder if folder.is_dir() else None

    def workdir(self, voice_id: str, tier: str) -> Path:
        return self.root / voice_id / "work" / tier

    def sweep(self, exists: Callable[[str], bool]) -> None:
        for folder in self.root.iterdir():
            if folder.is_dir() and not exists(folder.name):
                shutil.rmtree(folder, ignore_errors=True)


class DatabaseBlobs(BlobStore):
    """Files as rows of the library's database; engine files written out under `local_root` per version."""

    def __init__(self, database: Database, local_root: Path) -> None:
        self.database = database
        self.local_root = local_root
        local_root.mkdir(parents=True, exist_ok=True)
        self._empty: set[tuple[str, int]] = set()

    def put(self, voice_id: str, files: Mapping[str, bytes]) -> None:
        rows = [
            {"voice_id": voice_id, "name": check_name(n), "data": d, "size": len(d), "created_at": time.time()}
            for n, d in files.items()
        ]
        if not rows:
            return
        with self.database.write() as db:
            db.execute(delete(blobs).where(blobs.c.voice_id == voice_id, blobs.c.name.in_([r["name"] for r in rows])))
            db.execute(insert(blobs), rows)

    def get(self, voice_id: str, name: str) -> bytes | None:
        with self.database.read() as db:
            data = db.execute(select(blobs.c.data).where(blobs.c.voice_id == voice_id, blobs.c.name == name)).scalar()
        return bytes(data) if data is not None else None

    def names(self, voice_id: str, prefix: str = "") -> list[str]:
        query = select(blobs.c.name).where(
            blobs.c.voice_id == voice_id, blobs.c.name.startswith(prefix, autoescape=True)
        )
        with self.database.read() as db:
            return sorted(db.execute(query).scalars())

    def delete_voice(self, voice_id: str) -> None:
        with self.database.write() as db:
            db.execute(delete(blobs).where(blobs.c.voice_id == voice_id))
        for folder in self.local_root.glob(f"{voice_id}.v*"):
            shutil.rmtree(folder, ignore_errors=True)

    def local_dir(self, voice_id: str, version: int) -> Path | None:
        folder = self.local_root / f"{voice_id}.v{version}"
        if folder.is_dir():
            return folder
        if (voice_id, version) in self._empty:
            return None
        query = select(blobs.c.name, blobs.c.data).where(
            blobs.c.voice_id == voice_id, ~blobs.c.name.startswith(SAMPLES)
        )
        with self.database.read() as db:
            files = {name: bytes(data) for name, data in db.execute(query)}
        if not files:
            if len(self._empty) >= _KEPT_EMPTY:
                self._empty.clear()
            self._empty.add((voice_id, version))
            return None
        self._write_out(folder, files)
        self._forget_older(voice_id, version)
        return folder

    def _write_out(self, folder: Path, files: Mapping[str, bytes]) -> None:
        """All files into a hidden folder, then one rename: readers see the whole voice or none of it."""
        tmp = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.tmp")
        try:
            for name, data in files.items():
                path = tmp / name
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not folder.is_dir():  # not another process's copy that won the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _forget_older(self, voice_id: str, version: int) -> None:
        """Drop copies older than the previous version (a request may still be reading that one)."""
        for folder in self.local_root.glob(f"{voice_id}.v*"):
            older = folder.name.rsplit(".v", 1)[-1]
            if older.isdigit() and int(older) < version - 1:
                shutil.rmtree(folder, ignore_errors=True)

    def workdir(self, voice_id: str, tier: str) -> Path:
        return self.local_root / "work" / voice_id / tier

    def sweep(self, exists: Callable[[str], bool]) -> None:
        with self.database.write() as db:  # one statement, so no voice created meanwhile can lose a file
            db.execute(text("DELETE FROM blobs WHERE voice_id NOT IN (SELECT id FROM voices)"))
        for folder in self.local_root.glob("*.v*"):
            if folder.is_dir() and not exists(folder.name.rsplit(".v", 1)[0]):
                shutil.rmtree(folder, ignore_errors=True)


def open_blobs(database: Database, voices_dir: Path, local_root: Path) -> BlobStore:
    """Files in the database when it is shared by several machines, else in the data directory."""
    return DatabaseBlobs(database, local_root) if database.shared else FileBlobs(voices_dir)
