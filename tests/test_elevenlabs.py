"""ElevenLabs as a remote engine, against a real HTTP server speaking ElevenLabs' API on loopback: a
second voxclone (with an API key), in this process or as its own `voxclone serve` process."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import SHARED_DATA, TONE, decode_audio, serve_tone, wait_healthy
from make_tone_model import SECONDS_PER_CHAR
from tone_cloner import ToneCloner

from voxclone.cloning import Cloners
from voxclone.engines import AudioChunk, Engines, RemoteEngine, SpeakOptions, StockVoice, VoiceSpec
from voxclone.engines.elevenlabs import ElevenLabsCloner, ElevenLabsEngine
from voxclone.runtime import Parts
from voxclone.settings import Settings

KEY = "el-test-key-5f2c9a"  # the upstream's key: must never show up in a log, a response or a message
REMOTE_TONE = "elevenlabs-tiny_tone"  # the upstream's tone voice, as the library lists it here
STREAM_ROUTE = 'route="/v1/text-to-speech/{voice_id}/stream"'


class Stalled(RemoteEngine):
    """An upstream engine that answers only when the test lets it: an upstream that times out."""

    name = "stalled"

    def __init__(self) -> None:
        super().__init__()
        self.released = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Stalled:
        return cls()

    def stock_voices(self) -> list[StockVoice]:
        return [StockVoice("stalled_voice", {})]

    def check_voice(self, params: Mapping[str, Any], files_dir: Path | None) -> None:
        pass

    async def astream(self, text: str, voice: VoiceSpec, options: SpeakOptions) -> AsyncIterator[AudioChunk]:
        while not self.released:
            await asyncio.sleep(0.02)
        yield AudioChunk(np.zeros(1600, np.float32), 16_000, text)


def _upstream_settings(settings: Settings, database_url: str | None, **update: Any) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir.parent / "upstream",
            "database_url": database_url,  # a library of its own, as ElevenLabs' is
            "api_keys": [KEY],
            "clone_engine": "tone",
            "consent": "off",  # it stands in for ElevenLabs, whose API asks for no consent recording
            **update,
        }
    )


def _local(settings: Settings, url: str, key: str = KEY, **update: Any) -> tuple[Settings, Parts]:
    local = settings.model_copy(
        update={
            "elevenlabs_api_key": key,
            "elevenlabs_url": url,
            "elevenlabs_refresh_s": 0.5,
            "elevenlabs_timeout_s": 2.0,
            **update,
        }
    )
    local = Settings.model_validate(local.model_dump())  # the key becomes a SecretStr, as from the environment
    return local, Parts(cloners=Cloners([ElevenLabsCloner()]))


def _with_elevenlabs(engines: Engines, settings: Settings) -> Engines:
    return Engines({**engines, "elevenlabs": ElevenLabsEngine.from_settings(settings)})


def _wait_for_voice(client: Any, voice_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        voices = {v["voice_id"]: v for v in client.get("/v1/voices").json()["voices"]}
        if voice_id in voices:
            return voices[voice_id]
        time.sleep(0.1)
    raise AssertionError(f"{voice_id} never appeared in /v1/voices")


def _upstream_calls(upstream: Any) -> float:
    lines = httpx.get(f"{upstream.url}/metrics", headers={"xi-api-key": KEY}, timeout=10).text.splitlines()
    return sum(
        float(line.split()[-1]) for line in lines if line.startswith("voxclone_requests_total") and STREAM_ROUTE in line
    )


@pytest.fixture
def upstream(settings, make_live_server, new_database_url):
    return make_live_server(_upstream_settings(settings, new_database_url()), Parts(cloners=Cloners([ToneCloner()])))


@pytest.fixture
def local(settings, upstream, make_client, engines):
    local, parts = _local(settings, upstream.url)
    return make_client(local, Parts(engines=_with_elevenlabs(engines, local), cloners=parts.cloners))


def test_the_accounts_voices_are_listed_and_speak_plain_and_streamed(local, upstream):
    voice = _wait_for_voice(local, REMOTE_TONE)
    assert voice["engine"] == "elevenlabs" and voice["category"] == "remote" and voice["name"] == f"{TONE} (elevenlabs)"
    text = "Hello there"
    plain = local.post("/v1/audio/speech", json={"input": text, "voice": REMOTE_TONE, "response_format": "wav"})
    assert plain.status_code == 200, plain.text
    audio, rate = decode_audio(plain.content)
    assert rate == 24_000
    assert abs(audio.size / rate - len(text) * SECONDS_PER_CHAR) < 0.05  # the upstream tone voice, resampled
    streamed = local.post(
        f"/v1/text-to-speech/{REMOTE_TONE}/stream?output_format=pcm_24000", json={"text": "Streamed, piece by piece."}
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "audio/pcm"
    pcm, _ = decode_audio(streamed.content, "pcm", 24_000)
    assert 1.0 < pcm.size / 24_000 < 3.0 and np.abs(pcm).max() > 0.1


def test_a_cache_hit_makes_no_upstream_call(local, upstream):
    _wait_for_voice(local, REMOTE_TONE)
    body = {"input": "Said once, heard twice.", "voice": REMOTE_TONE, "response_format": "mp3"}
    first = local.post("/v1/audio/speech", json=body)
    calls = _upstream_calls(upstream)
    assert first.status_code == 200 and calls >= 1
    second = local.post("/v1/audio/speech", json=body)
    assert second.status_code == 200 and second.content == first.content
    assert _upstream_calls(upstream) == calls


def test_engine_elevenlabs_clones_through_the_upstream_and_is_listed_once(local, upstream):
    _wait_for_voice(local, REMOTE_TONE)
    sample = (SHARED_DATA / "103-1240-0000.flac").read_bytes()
    added = local.post(
        "/v1/voices/add", data={"name": "Owyn", "engine": "elevenlabs"}, files=[("files", ("owyn.flac", sample))]
    )
    assert added.status_code == 200, added.text
    voice_id = added.json()["voice_id"]
    deadline = time.monotonic() + 120
    while (voice := local.get(f"/v1/voices/{voice_id}").json())[
        "status"
    ] == "enrolling" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert voice["status"] == "ready" and voice["engine"] == "elevenlabs", voice
    upstream_voices = httpx.get(f"{upstream.url}/v1/voices", headers={"xi-api-key": KEY}).json()["voices"]
    assert any(v["name"] == "Owyn" and v["category"] == "cloned" for v in upstream_voices)  # made by the upstream
    spoken = local.get(f"/speak_as/{voice_id}", params={"prompt": "Does this sound like me?"})
    assert spoken.status_code == 200 and decode_audio(spoken.content)[0].size > 0
    time.sleep(1.5)  # a few refreshes later, the upstream's copy is not listed beside ours
    names = [v["name"] for v in local.get("/v1/voices").json()["voices"]]
    assert names.count("Owyn") == 1 and not any(n.startswith("Owyn (") for n in names)


def _remote_voice(client: Any, upstream_id: str) -> str:
    """A library voice for an upstream id, as the refresher would list it (for upstreams that refuse to list)."""
    runtime = client.app.state.runtime
    return runtime.library.create(
        name=f"up {upstream_id}", engine="elevenlabs", params={"voice_id": upstream_id}, category="remote"
    ).id


def test_upstream_failures_become_clear_errors_and_the_key_is_never_shown(
    settings, upstream, make_client, engines, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = "el-wrong-key-77d1"
    local, parts = _local(settings, upstream.url, key=wrong)
    client = make_client(local, Parts(engines=_with_elevenlabs(engines, local), cloners=parts.cloners))
    voice = _remote_voice(client, TONE)
    refused = client.get(f"/speak_as/{voice}", params={"prompt": "Hi."})
    assert refused.status_code == 502
    message = refused.json()["detail"]["message"]
    assert "refused the API key" in message and "401" in message and "API key is required" in message
    streamed = client.post(f"/v1/text-to-speech/{voice}/stream", json={"text": "Hi."})
    assert streamed.status_code == 502 and "refused the API key" in streamed.json()["detail"]["message"]
    shown = " ".join([refused.text, streamed.text, client.get("/health").text, caplog.text, repr(local)])
    assert wrong not in shown and KEY not in shown


def test_upstream_rate_limit_is_429_with_retry_after(
    settings, make_live_server, make_client, engines, new_database_url
):
    upstream = make_live_server(_upstream_settings(settings, new_database_url(), rate_limit="2/minute"))
    local, parts = _local(settings, upstream.url, elevenlabs_refresh_s=3600)
    client = make_client(local, Parts(engines=_with_elevenlabs(engines, local), cloners=parts.cloners))
    voice = _remote_voice(client, TONE)
    answers = [client.get(f"/speak_as/{voice}", params={"prompt": f"Call {word}."}) for word in ("one", "two", "three")]
    limited = answers[-1]
    assert limited.status_code == 429, [a.status_code for a in answers]
    assert int(limited.headers["Retry-After"]) >= 1 and "retry later" in limited.json()["detail"]["message"]


def test_an_upstream_that_does_not_answer_in_time_is_504(
    settings, make_live_server, make_client, engines, new_database_url
):
    stalled = Stalled()
    upstream = make_live_server(
        _upstream_settings(settings, new_database_url()), Parts(engines=Engines({**engines, "stalled": stalled}))
    )
    try:
        local, parts = _local(settings, upstream.url, elevenlabs_timeout_s=1.0)
        client = make_client(local, Parts(engines=_with_elevenlabs(engines, local), cloners=parts.cloners))
        started = time.monotonic()
        answer = client.get(f"/speak_as/{_remote_voice(client, 'stalled_voice')}", params={"prompt": "Anyone there?"})
        assert answer.status_code == 504 and "did not answer within 1 s" in answer.json()["detail"]["message"]
        assert time.monotonic() - started < 10
    finally:
        stalled.released = True


def test_an_unreachable_upstream_is_502(settings, make_client, engines):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket closes
    local, parts = _local(settings, closed)
    client = make_client(local, Parts(engines=_with_elevenlabs(engines, local), cloners=parts.cloners))
    answer = client.get(f"/speak_as/{_remote_voice(client, 'anyone')}", params={"prompt": "Hello?"})
    assert answer.status_code == 502 and "could not reach ElevenLabs" in answer.json()["detail"]["message"]


def test_a_second_voxclone_process_serves_as_the_upstream(settings, tone_model, tmp_path, make_client, engines):
    server, url, log = serve_tone(tmp_path, tone_model, VOXCLONE_API_KEYS=KEY)
    try:
        wait_healthy(url, server, seconds=90)
        local, parts = _local(settings, url)
        client = make_client(local, Parts(engines=_with_elevenlabs(engines, local), cloners=parts.cloners))
        _wait_for_voice(client, REMOTE_TONE, timeout=30)
        answer = client.post(
            f"/v1/text-to-speech/{REMOTE_TONE}?output_format=pcm_16000", json={"text": "Across processes"}
        )
        assert answer.status_code == 200
        pcm, _ = decode_audio(answer.content, "pcm", 16_000)
        assert abs(pcm.size / 16_000 - len("Across processes") * SECONDS_PER_CHAR) < 0.05
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    assert KEY not in (tmp_path / "serve.log").read_text()
