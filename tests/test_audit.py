"""The audit trail lives in the library's database: every process given the library's URL appends to one
trail and reads all of it, a machine's audit.jsonl from before is imported once on upgrade, rows are never
changed or deleted, and no entry holds a secret. (What servers record is tests/test_consent.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from alembic import command
from conftest import BACKEND
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from voxclone.audit import AuditLog
from voxclone.database import Database, sqlite_url
from voxclone.migrations import config

OLD_LINES = (
    '{"time": 1700000000.0, "event": "voice.created", "voice_id": "old1", "name": "Ana", "key_id": null}\n'
    '{"time": 1700000100.5, "event": "consent.refused", "check": "words", "wer": 0.8, "key_id": "abcdef0123"}\n'
    '{"time": 1700000200.0, "event": "voice.del'  # a line a crash cut short
)


@pytest.fixture
def library_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty library (no schema yet): SQLite in a data dir, or a new PostgreSQL database."""
    if BACKEND != "postgresql":
        return sqlite_url(tmp_path / "machine-a" / "voices.sqlite3")
    cluster = request.getfixturevalue("postgres")
    return str(cluster.url(cluster.create_database()))


def _cli(url: str, data_dir: Path, *args: str) -> list[str]:
    env = {**os.environ, "VOXCLONE_DATABASE_URL": url, "VOXCLONE_DATA_DIR": str(data_dir)}
    printed = subprocess.run(
        [sys.executable, "-m", "voxclone.cli", "audit", *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    return printed.stdout.splitlines()


def test_every_process_on_the_library_appends_to_and_reads_one_trail(library_url, tmp_path):
    here = Database(library_url)
    AuditLog(here).record("voice.created", voice_id="v-here", name="Here", key_id=None)
    elsewhere = textwrap.dedent(f"""
        from voxclone.audit import AuditLog
        from voxclone.database import Database
        AuditLog(Database({library_url!r})).record("voice.deleted", voice_id="v-here", name="Here", key_id="k1")
    """)
    subprocess.run([sys.executable, "-c", elsewhere], check=True, timeout=60)
    assert [(e.event, e.details["voice_id"]) for e in AuditLog(here).entries()] == [
        ("voice.created", "v-here"),
        ("voice.deleted", "v-here"),
    ]
    # A third process on another machine's data dir prints both, as before: one line or one object each.
    lines = _cli(library_url, tmp_path / "machine-b")
    assert len(lines) == 2 and "voice.created" in lines[0] and "name=Here" in lines[0] and "key_id=k1" in lines[1]
    [deleted] = _cli(library_url, tmp_path / "machine-b", "--event", "voice.deleted", "--json")
    assert json.loads(deleted) | {"time": 0} == {
        "time": 0,
        "event": "voice.deleted",
        "voice_id": "v-here",
        "name": "Here",
        "key_id": "k1",
    }
    assert AuditLog(here).voice_ids() == {"v-here"}
    here.close()


def test_an_audit_jsonl_from_before_is_imported_once_on_upgrade(library_url, tmp_path):
    old = Database(library_url, migrate=False)  # a library as the previous release left it
    with old.write() as connection:
        alembic = config()
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "0009")
    old.close()
    data_dir = tmp_path / "machine-a"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "audit.jsonl").write_text(OLD_LINES)

    lines = _cli(library_url, data_dir, "--json")
    entries = [json.loads(line) for line in lines]
    assert [(e["time"], e["event"]) for e in entries[:2]] == [
        (1700000000.0, "voice.created"),
        (1700000100.5, "consent.refused"),
    ]
    assert entries[1] == {
        "time": 1700000100.5,
        "event": "consent.refused",
        "check": "words",
        "wer": 0.8,
        "key_id": "abcdef0123",
    }
    assert entries[2]["event"] == "audit.imported" and entries[2]["entries"] == 2 and len(entries) == 3
    assert not (data_dir / "audit.jsonl").exists() and (data_dir / "audit.jsonl.imported").read_text() == OLD_LINES

    # Put back as it was (a crash before the rename): recognised, not imported twice.
    (data_dir / "audit.jsonl").write_text(OLD_LINES)
    assert len(_cli(library_url, data_dir, "--json")) == 3
    assert not (data_dir / "audit.jsonl").exists()
    assert _cli(library_url, data_dir, "--since", "2023-11-14", "--event", "consent.refused")[0].startswith(
        "2023-11-14 22:15:00Z  consent.refused    check=words  wer=0.8"
    )


def test_replicas_starting_at_once_on_one_data_dir_import_its_audit_jsonl_once(library_url, tmp_path):
    database = Database(library_url)
    legacy = tmp_path / "machine-a" / "audit.jsonl"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_text(OLD_LINES)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            AuditLog(database, legacy_file=legacy)
        except BaseException as e:
            errors.append(e)

    replicas = [threading.Thread(target=start) for _ in range(4)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join()
    assert errors == []
    events = [e.event for e in AuditLog(database).entries()]
    assert events == ["voice.created", "consent.refused", "audit.imported"]
    database.close()


def test_the_trail_is_append_only_and_never_holds_a_secret(library_url):
    database = Database(library_url)
    log = AuditLog(database)
    for field in ("key", "token", "text", "audio"):
        with pytest.raises(ValueError, match="never hold"):
            log.record("voice.created", voice_id="v1", **{field: "secret-value"})
    log.record("voice.created", voice_id="v1", name="Kept")
    for statement in ("UPDATE audit SET event = 'voice.renamed'", "DELETE FROM audit"):
        with pytest.raises(DatabaseError, match="append-only"), database.write() as db:
            db.execute(text(statement))
    assert [(e.event, e.details) for e in log.entries()] == [("voice.created", {"voice_id": "v1", "name": "Kept"})]
    database.close()
