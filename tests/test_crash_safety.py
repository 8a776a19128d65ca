"""Writes survive `kill -9` at any moment: the library and the cache stay consistent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from voxclone.cache import AudioCache
from voxclone.voices import VoiceLibrary

WRITER = textwrap.dedent(
    """
    import sys, os
    from pathlib import Path
    from voxclone.cache import AudioCache
    from voxclone.voices import VoiceLibrary
    root = Path(sys.argv[1])
    library = VoiceLibrary(root / "voices.sqlite3", root / "voices")
    cache = AudioCache(root / "cache", 2_000_000)
    i = 0
    while True:
        i += 1
        voice = library.create(name=f"v{os.getpid()}-{i}", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")
        library.update(voice.id, scores={"n": i}, bump_version=True)
        cache.put(f"k{i}", os.urandom(40_000 + i % 7 * 1000), voice_id=voice.id)
        print(voice.id, flush=True)
    """
)


def test_library_and_cache_survive_kill_9_mid_write(tmp_path):
    committed: list[str] = []
    for round_ in range(5):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0 + 0.3 * round_)
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate()
        committed += out.split()  # printed only after the writes returned
    assert len(committed) > 10
    db = sqlite3.connect(tmp_path / "voices.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    library = VoiceLibrary(tmp_path / "voices.sqlite3", tmp_path / "voices")
    ids = {v.id for v in library.all()}
    assert set(committed) <= ids  # every voice whose write returned is there, whole
    assert all(v.version >= 1 and isinstance(v.scores, dict) for v in library.all())
    cache = AudioCache(tmp_path / "cache", 2_000_000)
    keys = list(cache._cache.iterkeys())
    assert keys, "the cache kept entries"
    served = [cache.get(k) for k in keys]
    assert all(body is None or len(body) >= 40_000 for body in served)  # whole entries or detected, never partial
