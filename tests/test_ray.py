"""voxclone on Ray Serve, end to end through Serve's HTTP proxy, on a local Ray cluster and a private
PostgreSQL library: two synthesis replicas, two enrolment replicas, one API replica (voxclone.deploy).

Ray starts in about half a minute on two cores, so one cluster serves every test here, in order.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import SHARED_DATA, TONE, decode_audio
from reverse_proxy import free_port

ray = pytest.importorskip("ray", reason="the scale extra (pip install 'voxclone[scale]') runs these")
from ray import serve  # noqa: E402

from voxclone.database import Database  # noqa: E402
from voxclone.deploy import BACKGROUND_NICENESS, Options, build, quiet_own_processes, start_local_cluster  # noqa: E402
from voxclone.jobs import JobQueue  # noqa: E402

pytestmark = pytest.mark.slow  # a local Ray cluster and a PostgreSQL cluster: external systems, not tiny models

CLIP = SHARED_DATA / "103-1240-0000.flac"  # 14 s of one reader
TEXT = (
    "The old lighthouse keeper climbed the narrow stairs every evening, lit the great lamp, and watched the "
    "fishing boats return through the channel below. Nobody in the village remembered a night when the light had failed."
)
RATE = 16_000  # the tone engine's


def unique(tag: str) -> str:
    """TEXT with `tag` in every clause, so no piece of it is in any cache: every piece is spoken."""
    return TEXT.replace(",", f" {tag},").replace(".", f" {tag}.")


@dataclass
class Cluster:
    url: str
    database_url: str


@pytest.fixture(scope="module")
def cluster(postgres, tone_model, tmp_path_factory):
    url = postgres.url(postgres.create_database())
    overrides = {
        "data_dir": str(tmp_path_factory.mktemp("ray") / "data"),
        "database_url": url,
        "extra_voice_paths": [str(tone_model)],
        "default_voice": TONE,
        "clone_engine": "tone",
        "job_lease_s": 3.0,
        "job_poll_s": 0.5,
        "rate_limit": "100000/minute",
        "log_level": "warning",
    }
    tests = str(Path(__file__).parent)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (tests, before) if p)  # the replicas import ray_parts
    try:
        start_local_cluster(num_cpus=4, include_dashboard=False, logging_level="warning", log_to_driver=False)
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    quiet_own_processes()  # as `voxclone serve --ray` does once Serve has started
    options = Options(replicas=2, enrolment_replicas=2, cpus_per_replica=0, parts="ray_parts:parts")
    serve.run(build(overrides, options), name="voxclone", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the Serve app never became healthy"
        time.sleep(0.5)
    yield Cluster(base, url)
    serve.shutdown()
    ray.shutdown()


def _replica_pieces(client: httpx.Client) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("voxclone_replica_pieces_total{"):
            counts[line.split('replica="')[1].split('"')[0]] = float(line.split()[-1])
    return counts


def _synthesis_actors() -> set[str]:
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "synthesis" in a["name"]}


def _running_replicas(deployment: str) -> int:
    return serve.status().applications["voxclone"].deployments[deployment].replica_states.get("RUNNING", 0)


def _wait_ready(client: httpx.Client, voice_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while (voice := client.get(f"/v1/voices/{voice_id}").json())["status"] == "enrolling":
        assert time.monotonic() < deadline, voice
        time.sleep(0.3)
    return voice


def _stream(base: str, voice: str, text: str, out: list[bytes], errors: list[BaseException]) -> None:
    try:
        with (
            httpx.Client(base_url=base, timeout=120) as client,
            client.stream(
                "POST", f"/v1/text-to-speech/{voice}/stream?output_format=pcm_16000", json={"text": text}
            ) as response,
        ):
            response.raise_for_status()
            out.append(b"".join(response.iter_bytes()))
    except BaseException as e:
        errors.append(e)


def test_enrolment_replicas_hold_their_cpu_share_in_rays_accounting(cluster):
    # Two enrolment replicas at the default one CPU each; the synthesis replicas here ask for none.
    deadline = time.monotonic() + 30
    while (used := ray.cluster_resources()["CPU"] - ray.available_resources().get("CPU", 0.0)) != 2:
        assert time.monotonic() < deadline, f"Ray accounts {used} CPUs to the replicas"
        time.sleep(0.5)


def test_what_no_request_waits_on_runs_below_speech(cluster):
    import psutil

    def niceness(title: str) -> list[set[int]]:
        """The priorities of the threads of each of this cluster's processes whose title starts so."""
        found = []
        for process in psutil.Process().children(recursive=True):
            try:
                if next(iter(process.cmdline()), "").startswith(title):
                    found.append({os.getpriority(os.PRIO_PROCESS, t.id) for t in process.threads()})
            except (psutil.Error, OSError):
                continue
        assert found, f"no process {title}"
        return found

    own = os.getpriority(os.PRIO_PROCESS, 0)  # the cluster started at this process's priority
    quiet, speech = {max(own, BACKGROUND_NICENESS)}, {own}
    assert niceness("ray::ServeReplica:voxclone:enrolment") == [quiet, quiet]  # every thread, both replicas
    assert niceness("ray::ServeController") == [quiet]
    assert all(n == quiet for n in niceness(str(Path(ray.__file__).parent / "core" / "src" / "ray" / "gcs")))
    assert niceness("ray::ServeReplica:voxclone:synthesis") == [speech, speech]
    assert niceness("ray::ServeReplica:voxclone:api") == [speech]
    assert niceness("ray::ProxyActor") == [speech]


def test_a_voice_cloned_by_an_enrolment_replica_speaks_on_both_synthesis_replicas(cluster):
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        added = client.post(
            "/v1/voices/add", data={"name": "Across"}, files=[("files", ("me.flac", CLIP.read_bytes()))]
        )
        assert added.status_code == 200, added.text
        voice_id = added.json()["voice_id"]
        assert _wait_ready(client, voice_id, timeout=90)["status"] == "ready"
        before = _replica_pieces(client)
        results: list[httpx.Response] = []
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(
                    client.post(f"/v1/text-to-speech/{voice_id}", json={"text": f"Sentence {i}."})
                )
            )
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [200] * 8
        assert all(decode_audio(r.content)[0].size > 0.3 * RATE for r in results)
        after = _replica_pieces(client)
        served = {replica for replica, count in after.items() if count > before.get(replica, 0)}
        assert len(served) == 2, after  # the clone's files reached both replicas (from the database)


def test_concurrent_streams_spread_over_both_replicas_and_arrive_whole(cluster):
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        before = _replica_pieces(client)
    out: list[bytes] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_stream, args=(cluster.url, TONE, unique(f"s{i}"), out, errors)) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(out) == 4
    assert all(len(body) / 2 / RATE > 0.06 * len(TEXT) for body in out)  # every character's tone arrived
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        after = _replica_pieces(client)
    assert sum(1 for r, n in after.items() if n > before.get(r, 0)) == 2, after


def test_a_synthesis_replica_killed_mid_stream_leaves_every_stream_whole_and_is_replaced(cluster):
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        voices = {v["voice_id"] for v in client.get("/v1/voices").json()["voices"]}
        before = _replica_pieces(client)
        replicas = _synthesis_actors()
        out: list[bytes] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_stream, args=(cluster.url, TONE, unique(f"k{i}"), out, errors)) for i in range(4)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while sum(1 for r, n in _replica_pieces(client).items() if n > before.get(r, 0)) < 2:  # both are speaking
            assert time.monotonic() < deadline, "the streams never reached both replicas"
            time.sleep(0.1)
    victim = sorted(replicas)[0]
    assert all(t.is_alive() for t in threads)  # killed mid-stream: no stream has ended yet
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    for t in threads:
        t.join()
    # Every stream ends whole: what the dead replica had in hand was spoken again (by voxclone's retry,
    # counted in voxclone_replica_retries, or by Serve's own when the request had not reached it).
    assert not errors, errors
    assert all(len(body) / 2 / RATE > 0.06 * len(TEXT) for body in out)
    deadline = time.monotonic() + 120
    while _running_replicas("synthesis") < 2 or victim in _synthesis_actors():
        assert time.monotonic() < deadline, "the killed replica was not replaced"
        time.sleep(1)
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        assert {v["voice_id"] for v in client.get("/v1/voices").json()["voices"]} == voices  # no voice lost
        assert client.post(f"/v1/text-to-speech/{TONE}", json={"text": "Still speaking."}).status_code == 200


def test_an_enrolment_worker_killed_mid_job_has_its_job_resumed_by_another(cluster):
    database = Database(cluster.database_url)
    jobs = JobQueue(database)
    with httpx.Client(base_url=cluster.url, timeout=120) as client:
        added = client.post(
            "/v1/voices/add", data={"name": "Resumed"}, files=[("files", ("me.flac", CLIP.read_bytes()))]
        )
        assert added.status_code == 200, added.text
        voice_id = added.json()["voice_id"]
        deadline = time.monotonic() + 30
        while not (running := [j for j in jobs.of_voice(voice_id) if j.status == "running"]):
            assert time.monotonic() < deadline, jobs.of_voice(voice_id)
            time.sleep(0.2)
        killed = int(running[0].worker.split("/")[1])
        os.kill(killed, signal.SIGKILL)  # the replica's process, mid-clone
        voice = _wait_ready(client, voice_id, timeout=90)
    assert voice["status"] == "ready", voice
    job = jobs.of_voice(voice_id)[-1]
    assert job.status == "done" and job.attempts == 2 and int(job.worker.split("/")[1]) != killed
    database.close()


def test_the_kubernetes_example_deploys_this_application_with_arguments_it_takes():
    import yaml

    from voxclone import deploy

    documents = list(yaml.safe_load_all((Path(__file__).parents[1] / "deploy" / "rayservice.yaml").read_text()))
    service = next(d for d in documents if d["kind"] == "RayService")
    (application,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    module, _, name = application["import_path"].partition(":")
    assert module == "voxclone.deploy" and callable(getattr(deploy, name))
    assert isinstance(deploy.app(application["args"]), serve.Application)  # every argument is known and typed
    env = {
        e["name"]: e.get("value")
        for e in service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert {"VOXCLONE_DATABASE_URL", "VOXCLONE_API_KEYS"} <= set(env)
    # the cluster's nodes run Ray as a cluster that `voxclone serve --ray` starts does
    assert {k: env.get(k) for k in deploy.QUIET_CLUSTER} == deploy.QUIET_CLUSTER
    with pytest.raises(ValueError, match="unknown arguments"):
        deploy.app({"replica": "2"})
