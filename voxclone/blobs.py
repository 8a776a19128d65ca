"""Where a voice's files live: the files a cloner made for its engine, and its reference samples.

`FileBlobs` keeps them in the data directory, one folder per voice (`voices/<id>/`), as voxclone always
has. `DatabaseBlobs` keeps them as rows of the library's database, and `S3Blobs` as objects of an S3
bucket (`VOXCLONE_BLOB_URL`), so every machine given the database URL (and the bucket) has every voice;
engines read files from a folder, so a machine writes a voice's engine files out once per voice version
(`local_dir`) into a local folder, atomically, before speaking with it.

Names are relative paths inside a voice (`voice.tone.npz`, `samples/<id>.wav`); `samples/` holds the
recordings a voice was cloned from, which engines never read. Every call may block (on a database,
or a network), so a caller on the event loop makes it on a thread.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Float, Integer, LargeBinary, Table, Text, delete, insert, select, text

from .database import Database, metadata
from .errors import BadInput, UpstreamError
from .files import atomic_write

if TYPE_CHECKING:
    from .settings import Settings

SAMPLES = "samples/"
_NAME = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEPT_EMPTY = 4096  # (voice, version) pairs remembered to have no engine files, so none is looked up twice
_DELETE_BATCH = 1000  # the most keys one S3 DeleteObjects call takes

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


class RemoteBlobs(BlobStore):
    """Files kept off this machine (rows, objects); engine files written out under `local_root` per version."""

    def __init__(self, local_root: Path) -> None:
        self.local_root = local_root
        local_root.mkdir(parents=True, exist_ok=True)
        self._empty: set[tuple[str, int]] = set()

    @abstractmethod
    def _engine_files(self, voice_id: str) -> dict[str, bytes]:
        """Every stored file of a voice but its samples: what its engine reads."""

    @abstractmethod
    def _delete_stored(self, voice_id: str) -> None: ...

    @abstractmethod
    def _sweep_stored(self, exists: Callable[[str], bool]) -> None: ...

    def delete_voice(self, voice_id: str) -> None:
        self._delete_stored(voice_id)
        for folder in self.local_root.glob(f"{voice_id}.v*"):
            shutil.rmtree(folder, ignore_errors=True)

    def local_dir(self, voice_id: str, version: int) -> Path | None:
        folder = self.local_root / f"{voice_id}.v{version}"
        if folder.is_dir():
            return folder
        if (voice_id, version) in self._empty:
            return None
        files = self._engine_files(voice_id)
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
        self._sweep_stored(exists)
        for folder in self.local_root.glob("*.v*"):
            if folder.is_dir() and not exists(folder.name.rsplit(".v", 1)[0]):
                shutil.rmtree(folder, ignore_errors=True)


class DatabaseBlobs(RemoteBlobs):
    """Files as rows of the library's database; engine files written out under `local_root` per version."""

    def __init__(self, database: Database, local_root: Path) -> None:
        super().__init__(local_root)
        self.database = database

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

    def _engine_files(self, voice_id: str) -> dict[str, bytes]:
        query = select(blobs.c.name, blobs.c.data).where(
            blobs.c.voice_id == voice_id, ~blobs.c.name.startswith(SAMPLES)
        )
        with self.database.read() as db:
            return {name: bytes(data) for name, data in db.execute(query)}

    def _delete_stored(self, voice_id: str) -> None:
        with self.database.write() as db:
            db.execute(delete(blobs).where(blobs.c.voice_id == voice_id))

    def _sweep_stored(self, exists: Callable[[str], bool]) -> None:
        with self.database.write() as db:  # one statement, so no voice created meanwhile can lose a file
            db.execute(text("DELETE FROM blobs WHERE voice_id NOT IN (SELECT id FROM voices)"))


class S3Blobs(RemoteBlobs):
    """Files as objects of an S3 bucket (AWS, or a compatible store such as MinIO), keyed
    `<prefix>/<voice id>/<name>`; engine files written out under `local_root` per version.

    Each file is one PUT, which S3 makes visible whole or not at all. Credentials come from boto3's own
    chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, an instance role) and are never logged. The bucket is
    checked when opened, so a wrong name, endpoint or key stops the start with one line saying which.
    A prefix (or a whole bucket, without one) belongs to one library and holds nothing else: a sweep
    takes every folder there whose voice the library lacks for a deleted voice's.
    """

    def __init__(self, url: str, local_root: Path, *, endpoint: str | None = None) -> None:
        super().__init__(local_root)
        self.bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.where = f"s3://{self.bucket}/{self.prefix}" + (f" at {endpoint}" if endpoint else "")
        self._client = _s3_client(endpoint)
        with self._errors("cannot open the bucket"):
            self._client.head_bucket(Bucket=self.bucket)

    def put(self, voice_id: str, files: Mapping[str, bytes]) -> None:
        for name, data in files.items():
            key = self._key(voice_id, check_name(name))
            with self._errors("cannot store a voice file"):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, voice_id: str, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        if not _NAME.match(name):  # no such name can have been stored
            return None
        with self._errors("cannot read a voice file"):
            try:
                reply = self._client.get_object(Bucket=self.bucket, Key=self._key(voice_id, name))
            except ClientError as e:
                if _code(e) in ("NoSuchKey", "404"):
                    return None
                raise
            return bytes(reply["Body"].read())

    def names(self, voice_id: str, prefix: str = "") -> list[str]:
        folder = self._key(voice_id, "")
        found = (key.removeprefix(folder) for key in self._keys(folder + prefix))
        return sorted(n for n in found if _NAME.match(n))

    def _engine_files(self, voice_id: str) -> dict[str, bytes]:
        files = {}
        for name in self.names(voice_id):
            data = None if name.startswith(SAMPLES) else self.get(voice_id, name)
            if data is not None:  # not one deleted since it was listed
                files[name] = data
        return files

    def _delete_stored(self, voice_id: str) -> None:
        keys = self._keys(self._key(voice_id, ""))
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            with self._errors("cannot delete a voice's files"):
                reply = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if reply.get("Errors"):
                failed = reply["Errors"][0]
                raise UpstreamError(
                    f"blob store {self.where}: cannot delete {failed.get('Key')!r}: {failed.get('Code')}"
                )

    def _sweep_stored(self, exists: Callable[[str], bool]) -> None:
        # Voices are listed before their rows are looked for: files seen first and then found without a
        # row belong to a deleted voice (a voice's row is written before any of its files).
        with self._errors("cannot list voices"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
            )
            folders = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
        for folder in folders:
            voice_id = folder.removeprefix(self.prefix).removesuffix("/")
            if not exists(voice_id):
                self._delete_stored(voice_id)

    def _key(self, voice_id: str, name: str) -> str:
        return f"{self.prefix}{voice_id}/{name}"

    def _keys(self, prefix: str) -> list[str]:
        with self._errors("cannot list voice files"):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """The store's failures as UpstreamError, saying what was being done where (never a credential)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError as e:
            raise UpstreamError(
                f"blob store {self.where}: {doing}: no credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            ) from e
        except ClientError as e:
            raise UpstreamError(f"blob store {self.where}: {doing}: {_explained(e, self.bucket)}") from e
        except BotoCoreError as e:
            raise UpstreamError(f"blob store {self.where}: {doing}: {e}") from e


def _s3_client(endpoint: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise BadInput(f"VOXCLONE_BLOB_URL needs the scale extra: pip install 'voxclone[scale]' ({e})") from e
    # Few, quick retries: an unreachable store fails the start in seconds, not minutes.
    config = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3})
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _explained(error: Any, bucket: str) -> str:
    code = _code(error)
    if code in ("404", "NoSuchBucket"):
        return f"there is no bucket {bucket!r}"
    if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return f"access denied ({code}): check the credentials and the bucket's policy"
    return str(error)


def open_blobs(settings: Settings, database: Database) -> BlobStore:
    """Voice files in the bucket of `blob_url` when it is set; else in the database when other machines
    share it; else in the data directory."""
    if settings.blob_url:
        return S3Blobs(settings.blob_url, settings.voice_files_dir, endpoint=settings.blob_endpoint)
    if database.shared:
        return DatabaseBlobs(database, settings.voice_files_dir)
    return FileBlobs(settings.voices_dir)
