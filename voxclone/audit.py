"""The audit log: who created and deleted which voice, and every consent decision, in order.

One JSON object per line in DATA_DIR/audit.jsonl, appended (O_APPEND: whole lines, even from several
processes) and synced to disk before the call returns, so an entry that was acknowledged survives a
crash. Nothing in voxclone rewrites or truncates the file. Entries hold ids, names, scores and key ids
(the short digest `voxclone keys list` shows), never a key, a recording or a user's text.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Field names that could only carry a secret or someone's words; refused outright rather than logged.
_FORBIDDEN = frozenset({"key", "api_key", "token", "secret", "password", "text", "transcript", "audio"})


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


class AuditLog:
    """Append-only JSON lines in `path`; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, event: str, **details: Any) -> Entry:
        """Append one entry and sync it to disk. Raises ValueError for a field that could hold a secret."""
        leaked = _FORBIDDEN.intersection(details)
        if leaked:
            raise ValueError(f"audit entries never hold {sorted(leaked)}")
        entry = Entry(time=round(time.time(), 3), event=event, details=details)
        line = json.dumps({"time": entry.time, "event": event, **details}, ensure_ascii=False, sort_keys=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def entries(self) -> Iterator[Entry]:
        """Every entry, oldest first; a line a crash cut short is skipped."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for raw in f:
                try:
                    data = json.loads(raw)
                    yield Entry(float(data.pop("time")), str(data.pop("event")), data)
                except (ValueError, KeyError, TypeError):
                    continue

    def voice_ids(self) -> set[str]:
        """Every voice id the log has seen created (deleted ones included): who a watermark may name."""
        return {
            str(e.details["voice_id"]) for e in self.entries() if e.event == "voice.created" and "voice_id" in e.details
        }
