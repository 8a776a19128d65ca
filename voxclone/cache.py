"""The on-disk audio cache: bounded, least-recently-used, persistent, and self-checking.

Built on diskcache (SQLite index + files, atomic writes). Each entry carries a SHA-256 of its
bytes, so a corrupted entry is detected, dropped and regenerated rather than served.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import diskcache

_DIGEST = 32


def cache_key(**parts: Any) -> str:
    """A stable key from everything that changes the audio (canonical JSON, hashed)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class AudioCache:
    """Encoded audio by key, tagged by voice id so a voice's entries can be dropped together."""

    def __init__(self, directory: Path, size_limit: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(
            str(directory), size_limit=size_limit, eviction_policy="least-recently-used", cull_limit=0, tag_index=True
        )
        self.enabled = size_limit > 0

    def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        blob = self._cache.get(key)
        if not isinstance(blob, bytes) or len(blob) < _DIGEST:
            return None
        digest, body = blob[:_DIGEST], blob[_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            self._cache.delete(key)  # corrupt: regenerate instead of serving garbage
            return None
        return body

    def put(self, key: str, body: bytes, *, voice_id: str) -> None:
        if self.enabled:
            self._cache.set(key, hashlib.sha256(body).digest() + body, tag=voice_id)
            # diskcache's automatic cull drops up to `cull_limit` entries at once (often all of them);
            # culling here removes least-recently-used entries only until the cache is under its bound.
            self._cache.cull()

    def drop_voice(self, voice_id: str) -> int:
        """Forget every entry of a voice (deleted or re-enrolled)."""
        return int(self._cache.evict(voice_id))

    @property
    def volume(self) -> int:
        return int(self._cache.volume())

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()
