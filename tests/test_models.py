"""`voxclone models list|pull|rm`: downloads from a real HTTP server on loopback (with Range), checked
against a manifest's SHA-256, resumed after an interruption, and refused cleanly when offline."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from file_server import serving

pytestmark = pytest.mark.slow  # downloads from a local file server, with resumes

VOXCLONE = [sys.executable, "-m", "voxclone.cli"]
BLOB = os.urandom(300_000) + b"tail"  # a "weights" file, big enough for several reads


@pytest.fixture
def server():
    with serving({"/w/model.bin": BLOB, "/w/config.json": b'{"tiny": true}'}) as files:
        yield files


def _manifest(tmp_path: Path, base: str, *, digest: str | None = None, pinned: bool = True) -> Path:
    files = [
        {
            "path": "config.json",
            "url": f"{base}/w/config.json",
            "sha256": hashlib.sha256(b'{"tiny": true}').hexdigest() if pinned else None,
        },
        {
            "path": "model.bin",
            "url": f"{base}/w/model.bin",
            "sha256": (digest or hashlib.sha256(BLOB).hexdigest()) if pinned else None,
            "size": len(BLOB),
        },
    ]
    entry = {
        "name": "tiny",
        "engine": "tone",
        "description": "a test model",
        "licence": "MIT",
        "files": files,
        "notice": "test weights only",
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"models": [entry]}))
    return path


@pytest.fixture
def run(tmp_path: Path):
    def run(*args: str, manifest: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "VOXCLONE_DATA_DIR": str(tmp_path / "d"), "VOXCLONE_MODEL_DIR": str(tmp_path / "weights")}
        if manifest is not None:
            env["VOXCLONE_MODEL_MANIFEST"] = str(manifest)
        return subprocess.run([*VOXCLONE, "models", *args], capture_output=True, text=True, env=env, timeout=120)

    return run


def test_pull_downloads_checks_and_lists_the_model_then_rm_removes_it(tmp_path, server, run):
    manifest = _manifest(tmp_path, server.url)
    before = run("list", manifest=manifest)
    assert before.returncode == 0 and "tiny" in before.stdout and "missing" in before.stdout
    assert (
        "voxclone models pull tiny" in before.stdout and "MIT" in before.stdout and "test weights only" in before.stdout
    )
    pulled = run("pull", "tiny", manifest=manifest)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "weights" / "tiny" / "model.bin").read_bytes() == BLOB
    assert not (tmp_path / "weights" / ".partial" / "tiny").exists()
    after = run("list", manifest=manifest)
    assert "present" in after.stdout and str(tmp_path / "weights" / "tiny") in after.stdout
    again = run("pull", "tiny", manifest=manifest)  # present and checked: nothing fetched
    assert again.returncode == 0 and len(server.ranges) == 2
    removed = run("rm", "tiny", manifest=manifest)
    assert removed.returncode == 0 and not (tmp_path / "weights" / "tiny").exists()


def test_an_interrupted_pull_resumes_with_a_range_request(tmp_path, server, run):
    manifest = _manifest(tmp_path, server.url)
    part = tmp_path / "weights" / ".partial" / "tiny" / "model.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(BLOB[:100_000])  # what an interrupted download left
    pulled = run("pull", "tiny", manifest=manifest)
    assert pulled.returncode == 0, pulled.stderr
    assert "bytes=100000-" in server.ranges
    assert (tmp_path / "weights" / "tiny" / "model.bin").read_bytes() == BLOB


def test_a_checksum_mismatch_is_rejected_and_nothing_is_kept(tmp_path, server, run):
    pulled = run("pull", "tiny", manifest=_manifest(tmp_path, server.url, digest="0" * 64))
    assert pulled.returncode == 1
    assert "does not match its pinned SHA-256" in pulled.stderr and "Traceback" not in pulled.stderr
    assert not (tmp_path / "weights" / "tiny" / "model.bin").exists()
    assert not list((tmp_path / "weights").rglob("*.part"))


def test_pull_offline_fails_fast_with_a_clear_message_and_writes_nothing(tmp_path, run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    pulled = run("pull", "tiny", manifest=_manifest(tmp_path, closed))
    assert pulled.returncode == 1 and time.monotonic() - started < 30
    assert (
        "could not download" in pulled.stderr and "offline" in pulled.stderr and "nothing was written" in pulled.stderr
    )
    assert not (tmp_path / "weights").exists() or not any(p.is_file() for p in (tmp_path / "weights").rglob("*"))


def test_files_without_a_pinned_digest_need_unverified_and_are_then_recorded(tmp_path, server, run):
    manifest = _manifest(tmp_path, server.url, pinned=False)
    refused = run("pull", "tiny", manifest=manifest)
    assert refused.returncode == 1 and "--unverified" in refused.stderr
    pulled = run("pull", "tiny", "--unverified", manifest=manifest)
    assert pulled.returncode == 0, pulled.stderr
    lock = json.loads((tmp_path / "weights" / "tiny" / "manifest.lock.json").read_text())
    assert lock["model.bin"] == hashlib.sha256(BLOB).hexdigest()


def test_unknown_models_and_hand_copied_folders_are_explained(tmp_path, run):
    unknown = run("pull", "no-such-model")
    assert unknown.returncode == 1 and "voxclone models list" in unknown.stderr
    listed = run("list", "--model-path", f"bark={tmp_path}")
    assert listed.returncode == 0 and str(tmp_path) in listed.stdout  # bark: the folder given, not a pull command
    for name in ("bark", "xtts_v2", "openvoice_v2"):
        assert name in listed.stdout
    assert "CPML (non-commercial)" in listed.stdout and "VOXCLONE_XTTS_ACCEPT_CPML" in listed.stdout
