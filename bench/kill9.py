"""Crash safety: start the server, load it, `kill -9` it at a random moment, restart; N rounds (issue 6).

    .venv/bin/python bench/kill9.py [--rounds 50] [--settle 180] [--database-url URL | --postgres]

With --database-url (or --postgres: a private PostgreSQL cluster of Debian's binaries, fsync on, started
for the run) the library, voice files and samples live in PostgreSQL instead of the data dir (issue 21).

Authentication is on (one admin key). Each round runs two clients at once: one adds voices
(ElevenLabs /v1/voices/add with a real clip) and deletes some, the other asks for speech of new
sentences (each answer is a cache write); then the server is SIGKILLed 0.5-6 s in. A voice is
"committed" once its add answered 200 (and "gone" once its delete answered 200; a delete the kill cut
off may have gone either way and is not counted). At the end, after one clean start that resumes
interrupted enrolments (waited on for up to --settle seconds): SQLite integrity check, every
committed voice present, no deleted voice back, every cache entry either valid or detected as
corrupt (counted), and every sentence whose speech answered 200 served again byte for byte.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import httpx
from server import ServerProcess, save
from sqlalchemy import text

from voxclone.cache import AudioCache
from voxclone.database import Database

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech_train-clean-100" / "103-1240-0000.flac"


KEY = "kill9-admin-key"


KEEP = 10  # committed voices never deleted, so the end check has voices to look for


def manage(
    url: str, rng: random.Random, committed: set[str], deleted: set[str], unanswered: set[str], stop: threading.Event
) -> None:
    with httpx.Client(base_url=url, timeout=30, headers={"xi-api-key": KEY}) as client:
        while not stop.is_set():
            try:
                # Delete only while enough stay: when adds are refused (enrolment queue full) the
                # deletes alone would empty the library and make the "committed voices survive" check vacuous.
                if rng.random() < 0.8 or len(committed - deleted - unanswered) <= KEEP:
                    r = client.post(
                        "/v1/voices/add",
                        data={"name": f"v{rng.getrandbits(40)}"},
                        files=[("files", ("a.flac", CLIP.read_bytes()))],
                    )
                    if r.status_code == 200:
                        committed.add(r.json()["voice_id"])
                else:
                    victim = rng.choice(sorted(committed - deleted - unanswered))
                    unanswered.add(victim)  # until it answers: a kill may land after the commit
                    if client.delete(f"/v1/voices/{victim}").status_code == 200:
                        deleted.add(victim)
                    unanswered.discard(victim)
            except httpx.HTTPError:
                return  # the server was killed


def speak(url: str, spoken: dict[str, bytes], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30, headers={"xi-api-key": KEY}) as client:
        while not stop.is_set():
            prompt = f"Sentence {len(spoken) + 1}."
            try:
                r = client.get("/speak_as/jm_kumo", params={"prompt": prompt})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                spoken[prompt] = r.content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument(
        "--settle", type=float, default=180.0, help="Seconds to wait for resumed enrolments at the end."
    )
    parser.add_argument("--database-url", default=None, help="A PostgreSQL library (postgresql://...).")
    parser.add_argument("--postgres", action="store_true", help="Start a private PostgreSQL cluster for the run.")
    args = parser.parse_args()
    cluster = None
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from postgres import PostgresCluster

        cluster = PostgresCluster(durable=True).start()
        args.database_url = cluster.url(cluster.create_database())
    rng = random.Random(9)
    committed: set[str] = set()
    deleted: set[str] = set()
    unanswered: set[str] = set()  # deletes cut off by the kill: either outcome is right
    spoken: dict[str, bytes] = {}
    # Consent is on by default with API keys (issue 20); this bench measures crash safety, not consent.
    env = {
        "VOXCLONE_API_KEYS": KEY,
        "VOXCLONE_CONSENT": "off",
        "VOXCLONE_ENROLMENT_TIME_BUDGET_S": "5",
        "VOXCLONE_ENROLMENT_QUEUE": "50",
    }
    if args.database_url:
        env["VOXCLONE_DATABASE_URL"] = args.database_url
    server = ServerProcess(**env)
    data_dir = Path(server._env["VOXCLONE_DATA_DIR"])
    for round_ in range(args.rounds):
        server.__enter__()
        stop = threading.Event()
        clients = [
            threading.Thread(target=manage, args=(server.url, rng, committed, deleted, unanswered, stop)),
            threading.Thread(target=speak, args=(server.url, spoken, stop)),
        ]
        for c in clients:
            c.start()
        time.sleep(rng.uniform(0.5, 6.0))
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        stop.set()
        for c in clients:
            c.join()
        server._log.close()
        print(
            f"round {round_ + 1}: {len(committed)} committed, {len(deleted)} deleted, {len(spoken)} spoken", flush=True
        )
    server.__enter__()  # one clean start: resumes interrupted enrolments
    with httpx.Client(base_url=server.url, timeout=60, headers={"xi-api-key": KEY}) as client:
        deadline = time.monotonic() + args.settle
        while True:
            present = {v["voice_id"]: v["status"] for v in client.get("/v1/voices").json()["voices"]}
            if "enrolling" not in present.values() or time.monotonic() > deadline:
                break
            time.sleep(2)
        same = sum(client.get("/speak_as/jm_kumo", params={"prompt": p}).content == body for p, body in spoken.items())
    server.process.terminate()
    server.process.wait()
    if args.database_url:  # PostgreSQL checks its own pages; what matters is that every row reads back whole
        database = Database(args.database_url)
        with database.read() as db:
            counts = {t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("voices", "blobs", "jobs")}
        database.close()
        integrity = f"ok ({counts})"
    else:
        integrity = sqlite3.connect(data_dir / "voices.sqlite3").execute("PRAGMA integrity_check").fetchone()[0]
    cache = AudioCache(data_dir / "cache", 1 << 30)
    keys = list(cache._cache.iterkeys())
    corrupt = sum(cache.get(k) is None for k in keys)
    result = {
        "rounds": args.rounds,
        "backend": "postgresql" if args.database_url else "sqlite",
        "integrity": integrity,
        "committed": len(committed),
        "deleted": len(deleted),
        "deletes_unanswered": len(unanswered),
        "committed_missing": len((committed - deleted - unanswered) - set(present)),
        "deleted_back": len(deleted & set(present)),
        "statuses": {s: list(present.values()).count(s) for s in ("ready", "enrolling", "failed")},
        "spoken": len(spoken),
        "spoken_served_identical": same,
        "cache_entries": len(keys),
        "cache_corrupt_detected": corrupt,
    }
    save("kill9_postgresql" if args.database_url else "kill9", result)
    server._tmp.cleanup()
    if cluster is not None:
        cluster.stop()


if __name__ == "__main__":
    main()
