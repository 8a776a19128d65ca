"""The library's database: SQLite files from every earlier schema upgrade in place; PostgreSQL shares one
library (voices, their files, jobs) between processes and machines; jobs are claimed once, and a dead
worker's job is taken over."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ORIGINAL_SCHEMA, SHARED_DATA, TONE, clone_elsewhere
from tone_cloner import ToneCloner, ToneRefiner

from voxclone.blobs import DatabaseBlobs
from voxclone.cloning import Cloners
from voxclone.database import Database
from voxclone.jobs import JobQueue
from voxclone.runtime import Parts

pytestmark = pytest.mark.slow  # a private PostgreSQL cluster

CLIP = SHARED_DATA / "103-1240-0000.flac"  # 14 s of one reader
OLD_VOICE = ("abc123", "Old friend", "tone", "cloned", "{}", "{}", "kept", 1700000000.0, "ready", 1.0, None, 3, "{}")
# What each pre-Alembic step did to the file (user_version 1 and 2 and 3), after ORIGINAL_SCHEMA.
_TO_V2 = (
    "CREATE TABLE voices_v2 (id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, engine TEXT NOT NULL, category TEXT NOT NULL, "
    "params TEXT NOT NULL, labels TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, status TEXT NOT NULL, "
    "progress REAL NOT NULL, error TEXT, version INTEGER NOT NULL, scores TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}')",
    "INSERT INTO voices_v2 SELECT *, '{}' FROM voices",
    "DROP TABLE voices",
    "ALTER TABLE voices_v2 RENAME TO voices",
    "CREATE INDEX voices_by_name ON voices (name)",
)
_TO_V3 = (
    "ALTER TABLE voices ADD COLUMN filters TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE voices ADD COLUMN tier TEXT NOT NULL DEFAULT ''",
)
_OLD_JOBS = (
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, voice_id TEXT NOT NULL, engine TEXT NOT NULL, tier TEXT NOT NULL, status TEXT NOT NULL, "
    "progress REAL NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', eta_s REAL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, "
    "created_at REAL NOT NULL, updated_at REAL NOT NULL)"
)


@pytest.mark.parametrize("user_version", [1, 2, 3])
def test_a_sqlite_library_from_each_earlier_schema_upgrades_in_place(tmp_path, user_version):
    path = tmp_path / "voices.sqlite3"
    old = sqlite3.connect(path)
    old.execute(ORIGINAL_SCHEMA)
    old.execute(f"INSERT INTO voices VALUES ({', '.join('?' * len(OLD_VOICE))})", OLD_VOICE)
    for statement in (*(_TO_V2 if user_version >= 2 else ()), *(_TO_V3 if user_version >= 3 else ())):
        old.execute(statement)
    if user_version == 3:  # jobs were recorded from then on
        old.execute(_OLD_JOBS)
        old.execute(
            "INSERT INTO jobs (id, voice_id, engine, tier, status, created_at, updated_at) VALUES ('j1', 'abc123', 'tone', 'instant', 'queued', 1, 1)"
        )
    old.execute(f"PRAGMA user_version = {user_version}")
    old.commit()
    old.close()

    database = Database(f"sqlite:///{path}")
    from voxclone.voices import VoiceLibrary

    library = VoiceLibrary(database, DatabaseBlobs(database, tmp_path / "files"))
    voice = library.get("old FRIEND")  # names are still found without regard to case
    assert (voice.id, voice.version, voice.description, voice.settings, voice.filters) == ("abc123", 3, "kept", {}, [])
    library.create(name="Old friend", engine="tone", params={}, category="cloned")  # names may repeat now
    queue = JobQueue(database)
    if user_version == 3:
        assert [j.id for j in queue.queued()] == ["j1"]
        assert queue.claim_next("me").id == "j1"  # an old job is claimed like a new one
    database.close()
    Database(f"sqlite:///{path}").close()  # reopening is a no-op


def test_a_postgresql_library_from_a_newer_voxclone_is_refused(postgres):
    url = postgres.url(postgres.create_database())
    Database(url).close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(RuntimeError, match="newer voxclone"):
        Database(url)


def test_workers_claiming_at_once_never_take_the_same_job(postgres):
    database = Database(postgres.url(postgres.create_database()))
    queue = JobQueue(database)
    submitted = {queue.submit(f"v{i}", "tone", "instant").id for i in range(30)}
    claimed: list[str] = []

    def work(name: str) -> None:
        while (job := queue.claim_next(name)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(submitted)  # each once
    assert all(j.attempts == 1 and j.status == "running" for j in (queue.get(i) for i in submitted))
    database.close()


def test_a_job_whose_worker_stops_renewing_is_taken_over_and_only_the_new_worker_finishes_it(postgres):
    database = Database(postgres.url(postgres.create_database()))
    queue = JobQueue(database, lease_s=1.0)
    job = queue.submit("v1", "tone", "instant")
    assert queue.claim_next("dead") is not None
    assert queue.keep_checkpoint(job.id, "dead", "step.txt", b"10", "one:/work")
    assert queue.claim_next("alive") is None  # leased
    time.sleep(1.2)
    taken = queue.claim_next("alive")
    assert taken is not None and taken.id == job.id and taken.attempts == 2 and taken.worker == "alive"
    assert queue.checkpoints(job.id) == {"step.txt": ("one:/work", b"10")}  # what the new worker resumes from
    assert not queue.report(job.id, "dead", 0.5, "late") and not queue.end(job.id, "dead", "done")
    assert not queue.keep_checkpoint(job.id, "dead", "step.txt", b"11", "one:/work")  # never over the new one's
    assert queue.keep_checkpoint(job.id, "alive", "step.txt", b"20", "two:/work")
    assert queue.checkpoints(job.id) == {"step.txt": ("two:/work", b"20")}
    assert queue.end(job.id, "alive", "done") and queue.get(job.id).status == "done"
    assert queue.checkpoints(job.id) == {}  # they end with the job
    database.close()


_WORKER = """
import json, sys, time
sys.path.insert(0, {tests!r})
from tone_cloner import ToneCloner, ToneRefiner
from voxclone.cloning import Cloners
from voxclone.runtime import Parts, Runtime
from voxclone.settings import Settings
runtime = Runtime(Settings(**json.loads(sys.argv[1])), Parts(cloners=Cloners([ToneCloner(), ToneRefiner(steps=400)])))
runtime.start(None)
time.sleep(600)
"""


def test_a_deep_fit_taken_over_on_another_machine_resumes_from_its_stored_checkpoint(
    postgres, settings, make_client, tmp_path
):
    """The worker running a refinement is killed; a worker on another machine (its own data dir, only
    the database URL in common) takes the job over and goes on from the step the first one stored."""
    url = postgres.url(postgres.create_database())
    shared = {"database_url": url, "clone_engine": "tone", "job_lease_s": 1, "job_poll_s": 0.2, "job_checkpoint_s": 0}
    first = {**shared, "data_dir": str(tmp_path / "one"), "preload": False}
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER.format(tests=str(Path(__file__).parent)), json.dumps(first)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    queue = JobQueue(Database(url))
    try:
        api = make_client(
            settings.model_copy(update={**shared, "data_dir": tmp_path / "api", "run_enrolments": False}),
            Parts(cloners=Cloners([ToneCloner(), ToneRefiner()])),  # it only queues: the tiers it knows
        )
        added = api.post(
            "/v1/voices/add", data={"name": "Far", "tier": "deep"}, files=[("files", ("me.flac", CLIP.read_bytes()))]
        )
        assert added.status_code == 200, added.text
        voice_id = added.json()["voice_id"]
        [deep] = [j for j in queue.of_voice(voice_id) if j.tier == "deep"]
        deadline = time.monotonic() + 120
        while int(queue.checkpoints(deep.id).get("step.txt", ("", b"0"))[1]) < 40:
            assert time.monotonic() < deadline and worker.poll() is None, "the first worker never got to step 40"
            time.sleep(0.2)
        worker.kill()
        worker.wait()
        stored = int(queue.checkpoints(deep.id)["step.txt"][1])
        refiner = ToneRefiner(steps=400, step_s=0.01)
        make_client(
            settings.model_copy(update={**shared, "data_dir": tmp_path / "two"}),
            Parts(cloners=Cloners([ToneCloner(), refiner])),
        )
        deadline = time.monotonic() + 60
        while api.get(f"/v1/voices/{voice_id}").json()["tier"] != "deep":
            assert time.monotonic() < deadline, "the second worker never finished the refinement"
            time.sleep(0.2)
        assert refiner.resumed_from == [stored] and stored >= 40  # where the dead worker got to, not step 0
        done = queue.get(deep.id)
        assert done.status == "done" and done.attempts == 2 and queue.checkpoints(deep.id) == {}
    finally:
        worker.kill()
        worker.wait()
        queue.database.close()


def test_voice_files_in_the_database_are_written_out_once_per_version(postgres, tmp_path):
    database = Database(postgres.url(postgres.create_database()))
    blobs = DatabaseBlobs(database, tmp_path / "machine")
    blobs.put("v1", {"voice.bin": b"first", "samples/s.wav": b"wav"})
    folder = blobs.local_dir("v1", 1)
    assert folder is not None and sorted(p.name for p in folder.iterdir()) == [
        "voice.bin"
    ]  # samples stay in the database
    blobs.put("v1", {"voice.bin": b"second"})
    assert (blobs.local_dir("v1", 2) / "voice.bin").read_bytes() == b"second"
    assert blobs.local_dir("empty", 1) is None
    assert blobs.names("v1") == ["samples/s.wav", "voice.bin"] and blobs.names("v1", "samples/") == ["samples/s.wav"]
    blobs.delete_voice("v1")
    assert blobs.names("v1") == [] and not list((tmp_path / "machine").glob("v1.*"))
    database.close()


def test_two_servers_on_one_postgresql_library_share_voices_files_and_jobs(postgres, settings, make_client, tmp_path):
    """A voice cloned on one machine speaks on another that has only the database URL (no shared disk)."""
    url = postgres.url(postgres.create_database())
    first = settings.model_copy(update={"database_url": url, "clone_engine": "tone", "data_dir": tmp_path / "one"})
    second = first.model_copy(update={"data_dir": tmp_path / "two", "run_enrolments": False})
    cloning = make_client(first, Parts(cloners=Cloners([ToneCloner()])))
    api_only = make_client(second, Parts(cloners=Cloners([ToneCloner()])))
    voice_id = clone_elsewhere(api_only, "Shared", CLIP)["voice_id"]
    assert not (tmp_path / "one" / "voices" / voice_id).exists()  # rows, not files in a data dir
    assert cloning.get(f"/speak_as/{TONE}", params={"prompt": "Still here."}).status_code == 200
    assert json.loads(json.dumps(cloning.get(f"/v1/voices/{voice_id}").json()))["status"] == "ready"


def test_the_rate_limit_counts_a_caller_across_every_server_on_the_library(postgres, settings, make_client, tmp_path):
    url = postgres.url(postgres.create_database())
    exact = {"database_url": url, "rate_limit": "3/minute", "rate_limit_sync_s": 0.0, "data_dir": tmp_path / "a"}
    limited = settings.model_copy(update=exact)
    first, second = make_client(limited), make_client(limited.model_copy(update={"data_dir": tmp_path / "b"}))
    codes = [client.get("/v1/voices").status_code for client in (first, second, first, second)]
    assert codes == [200, 200, 200, 429]
    refused = first.get("/v1/voices")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    left = second.get("/v1/user/subscription")
    assert left.status_code == 429  # the subscription route is limited too, and counted together


def test_with_batched_counts_a_caller_over_two_servers_gets_at_most_one_round_more_than_its_limit(
    postgres, settings, make_client, tmp_path
):
    url = postgres.url(postgres.create_database())
    batched = {"database_url": url, "rate_limit": "4/minute", "rate_limit_sync_s": 1.0, "data_dir": tmp_path / "a"}
    limited = settings.model_copy(update=batched)
    first, second = make_client(limited), make_client(limited.model_copy(update={"data_dir": tmp_path / "b"}))
    # Each server counts the caller in the database, then admits one more from memory.
    assert [client.get("/v1/voices").status_code for client in (first, first, second, second)] == [200] * 4
    time.sleep(1.1)  # each writes its hit at its next count: one more gets through, as the 1 s allow
    codes = [client.get("/v1/voices").status_code for client in (first, second, first, second)]
    assert codes == [200, 429, 429, 429]
    refused = first.get("/v1/voices")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
