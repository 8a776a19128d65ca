"""Writes survive `kill -9` at any moment: the library and the cache stay consistent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from voxclone.blobs import open_blobs
from voxclone.cache import AudioCache
from voxclone.database import Database
from voxclone.settings import Settings
from voxclone.voices import VoiceLibrary

pytestmark = pytest.mark.slow  # server processes killed with -9 in a loop

WRITER = textwrap.dedent(
    """
    import sys, os
    from pathlib import Path
    from voxclone.blobs import open_blobs
    from voxclone.cache import AudioCache
    from voxclone.database import Database
    from voxclone.settings import Settings
    from voxclone.voices import VoiceLibrary
    root, url = Path(sys.argv[1]), sys.argv[2]
    database = Database(url)
    library = VoiceLibrary(database, open_blobs(Settings(data_dir=root), database))
    cache = AudioCache(root / "cache", 2_000_000)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        voice = library.create(name=f"v{os.getpid()}-{i}", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")
        library.update(voice.id, scores={"n": i}, bump_version=True)
        library.blobs.put(voice.id, {"voice.bin": os.urandom(20_000)})
        cache.put(f"k{i}", os.urandom(40_000 + i % 7 * 1000), voice_id=voice.id)
        print(voice.id, flush=True)
    """
)


def test_library_and_cache_survive_kill_9_mid_write(tmp_path, database_url):
    url = database_url or f"sqlite:///{tmp_path / 'voices.sqlite3'}"
    committed: list[str] = []
    for round_ in range(5):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), url], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"  # imports and opening are not timed
        time.sleep(0.6 + 0.3 * round_)
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate()
        committed += out.split()  # printed only after the writes returned
    assert len(committed) > 10
    if database_url is None:
        db = sqlite3.connect(tmp_path / "voices.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    database = Database(url)
    library = VoiceLibrary(database, open_blobs(Settings(data_dir=tmp_path), database))
    ids = {v.id for v in library.all()}
    assert set(committed) <= ids  # every voice whose write returned is there, whole
    assert all(v.version >= 1 and isinstance(v.scores, dict) for v in library.all())
    assert all(len(library.blobs.get(v, "voice.bin") or b"") == 20_000 for v in committed)  # its file too, whole
    database.close()
    cache = AudioCache(tmp_path / "cache", 2_000_000)
    keys = list(cache._cache.iterkeys())
    assert keys, "the cache kept entries"
    served = [cache.get(k) for k in keys]
    assert all(body is None or len(body) >= 40_000 for body in served)  # whole entries or detected, never partial
