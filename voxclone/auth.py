"""API keys: who may speak, who may also manage voices.

Keys are random tokens, so a SHA-256 digest is enough to store them (no slow KDF needed for
high-entropy secrets); a presented key is digested and compared in constant time against every
stored digest. Keys from VOXCLONE_API_KEYS have every scope; the keys file holds named keys with
their scopes, written atomically. A key is shown once, when created, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

from .errors import BadInput

Scope = Literal["speak", "manage"]
SCOPES: tuple[Scope, ...] = ("speak", "manage")
_PREFIX = "vxc_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """A stored key: its digest (never the key), a short id for listing/revoking, and its scopes."""

    id: str
    name: str
    digest: str
    scopes: tuple[Scope, ...]
    created_at: float


def scopes_for(scope: Scope) -> tuple[Scope, ...]:
    """`manage` includes `speak`."""
    return ("speak", "manage") if scope == "manage" else ("speak",)


def new_key(name: str, scope: Scope) -> tuple[str, KeyRecord]:
    """A new key (to show once, in clear) and the record that stores it."""
    if scope not in SCOPES:
        raise BadInput(f"scope must be one of {SCOPES}")
    key = _PREFIX + secrets.token_urlsafe(32)
    return key, KeyRecord(
        id=digest(key)[:10], name=name, digest=digest(key), scopes=scopes_for(scope), created_at=time.time()
    )


class KeySource(Protocol):
    """Where named keys are kept: the keys file, or a shared database (voxclone.key_store)."""

    @property
    def where(self) -> str: ...

    def load(self) -> list[KeyRecord]: ...

    def create(self, name: str, scope: Scope) -> tuple[str, KeyRecord]: ...

    def revoke(self, key_id: str) -> KeyRecord: ...

    def stamp(self) -> object:
        """A value that changes whenever the keys may have changed."""
        ...


class KeysFile:
    """The keys file: a JSON list of KeyRecords."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def stamp(self) -> object:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def load(self) -> list[KeyRecord]:
        if not self.path.exists():
            return []
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))
            return [KeyRecord(r["id"], r["name"], r["digest"], tuple(r["scopes"]), r["created_at"]) for r in rows]
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(f"keys file {self.path} is not valid: {e}") from e

    def _save(self, records: list[KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in records], f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def create(self, name: str, scope: Scope) -> tuple[str, KeyRecord]:
        """A new key (returned once, in clear) and its stored record."""
        key, record = new_key(name, scope)
        self._save([*self.load(), record])
        return key, record

    def revoke(self, key_id: str) -> KeyRecord:
        records = self.load()
        kept = [r for r in records if r.id != key_id]
        if len(kept) == len(records):
            raise BadInput(f"no key with id {key_id!r}; `voxclone keys list` shows them")
        self._save(kept)
        return next(r for r in records if r.id == key_id)


class KeyRing:
    """Every key the server accepts, as digests with scopes. The keys file (or database) is re-read when
    it changes, so `voxclone keys create|revoke` take effect on a running server.
    """

    def __init__(self, env_keys: list[str], keys_file: KeySource | None) -> None:
        self._env: list[tuple[str, tuple[Scope, ...]]] = [(digest(k), SCOPES) for k in env_keys if k]
        self._file = keys_file
        self._stamp: object = None
        self._from_file: list[tuple[str, tuple[Scope, ...]]] = []
        self._entries()  # a broken keys file fails at start-up

    def _entries(self) -> list[tuple[str, tuple[Scope, ...]]]:
        if self._file is not None:
            stamp = self._file.stamp()
            if stamp != self._stamp:
                self._from_file = [(r.digest, r.scopes) for r in self._file.load()] if stamp is not None else []
                self._stamp = stamp
        return self._env + self._from_file

    @property
    def enabled(self) -> bool:
        return bool(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def scopes(self, presented: str) -> tuple[Scope, ...] | None:
        """The scopes of a presented key, or None; compares against every entry in constant time."""
        candidate = digest(presented)
        found: tuple[Scope, ...] | None = None
        for stored, scopes in self._entries():
            if hmac.compare_digest(candidate, stored):
                found = scopes
        return found
