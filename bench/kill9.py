"""Crash safety: start the server, load it, `kill -9` it at a random moment, restart; N rounds (issue 6).

    .venv/bin/python bench/kill9.py [--rounds 50]

Each round sends a mix of voice additions (ElevenLabs /v1/voices/add with a real clip), deletions and
speech (which writes the cache), then SIGKILLs the server 0.5-4 s in. A voice is "committed" once
its add answered 200 (and "gone" once its delete answered 200). At the end: SQLite integrity check,
every committed voice present (ready, failed, or resumed), no deleted voice back, and every cache
entry either valid or detected as corrupt (counted).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
from server import ServerProcess, save

from voxclone.cache import AudioCache

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech_train-clean-100" / "103-1240-0000.flac"


def load(url: str, rng: random.Random, committed: set[str], deleted: set[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                kind = rng.random()
                if kind < 0.25:
                    r = client.post("/v1/voices/add", data={"name": f"v{rng.getrandbits(40)}"}, files=[("files", ("a.flac", CLIP.read_bytes()))])
                    if r.status_code == 200:
                        committed.add(r.json()["voice_id"])
                elif kind < 0.35 and committed - deleted:
                    victim = rng.choice(sorted(committed - deleted))
                    if client.delete(f"/v1/voices/{victim}").status_code == 200:
                        deleted.add(victim)
                else:
                    client.get("/speak_as/jm_kumo", params={"prompt": f"Crash test sentence {rng.randrange(40)}."})
            except httpx.HTTPError:
                return  # the server was killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(9)
    committed: set[str] = set()
    deleted: set[str] = set()
    env = {"VOXCLONE_ENROLMENT_TIME_BUDGET_S": "5", "VOXCLONE_RATE_LIMIT": "1000000/minute", "VOXCLONE_ENROLMENT_QUEUE": "50"}
    server = ServerProcess(**env)
    data_dir = Path(server._env["VOXCLONE_DATA_DIR"])
    for round_ in range(args.rounds):
        server.__enter__()
        stop = threading.Event()
        worker = threading.Thread(target=load, args=(server.url, rng, committed, deleted, stop))
        worker.start()
        time.sleep(rng.uniform(0.5, 4.0))
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        stop.set()
        worker.join()
        server._log.close()
        print(f"round {round_ + 1}: {len(committed)} committed, {len(deleted)} deleted", flush=True)
    server.__enter__()  # one clean start: resumes interrupted enrolments
    with httpx.Client(base_url=server.url, timeout=30) as client:
        present = {v["voice_id"]: v["status"] for v in client.get("/v1/voices").json()["voices"]}
    server.process.terminate()
    server.process.wait()
    integrity = sqlite3.connect(data_dir / "voices.sqlite3").execute("PRAGMA integrity_check").fetchone()[0]
    cache = AudioCache(data_dir / "cache", 1 << 30)
    keys = list(cache._cache.iterkeys())
    corrupt = sum(cache.get(k) is None for k in keys)
    result = {
        "rounds": args.rounds, "sqlite_integrity": integrity,
        "committed": len(committed), "deleted": len(deleted),
        "committed_missing": len((committed - deleted) - set(present)),
        "deleted_back": len(deleted & set(present)),
        "statuses": {s: list(present.values()).count(s) for s in ("ready", "enrolling", "failed")},
        "cache_entries": len(keys), "cache_corrupt_detected": corrupt,
    }
    save("kill9", result)
    server._tmp.cleanup()


if __name__ == "__main__":
    main()
