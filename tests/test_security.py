"""Safe to expose: keys and scopes, CORS allow-list with wildcards, rate/size limits, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import wave
from contextlib import closing

import numpy as np
import pytest
from conftest import SHARED_DATA, TONE
from websockets.exceptions import InvalidStatus

from voxclone.database import Database
from voxclone.key_store import REFRESH_S, open_keys
from voxclone.server.security import origin_pattern

SPEAK = {"input": "Hello.", "voice": TONE, "response_format": "pcm"}


@pytest.fixture
def keyed(settings, make_client):
    """A server with an env key (all scopes) and a named key (keys file or database) that may only speak."""
    with closing(Database(settings.db_url)) as database:
        speak_key, _ = open_keys(settings, database).create("reader", "speak")
    client = make_client(settings.model_copy(update={"api_keys": ["admin-key-123"]}))
    return client, speak_key


def test_no_key_gets_401_json_and_a_hint(keyed):
    client, _ = keyed
    response = client.post("/v1/audio/speech", json=SPEAK)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]  # OpenAI's route, OpenAI's shape
    assert "Authorization: Bearer" in error["message"] and error["type"] == "authentication_error"


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer wrong"}, {"xi-api-key": "admin-key-12"}, {"Authorization": "admin-key-123"}]
)
def test_wrong_key_gets_401(keyed, headers):
    client, _ = keyed
    assert client.post("/v1/audio/speech", json=SPEAK, headers=headers).status_code == 401


@pytest.mark.parametrize("header", ["Authorization", "xi-api-key"])
def test_right_key_in_either_header_speaks(keyed, header):
    client, _ = keyed
    value = "Bearer admin-key-123" if header == "Authorization" else "admin-key-123"
    assert client.post("/v1/audio/speech", json=SPEAK, headers={header: value}).status_code == 200


def test_speak_scope_may_speak_and_list_but_not_manage_voices(keyed):
    client, speak_key = keyed
    headers = {"Authorization": f"Bearer {speak_key}"}
    assert client.post("/v1/audio/speech", json=SPEAK, headers=headers).status_code == 200
    assert client.get("/v1/voices", headers=headers).status_code == 200
    denied = client.delete("/v1/voices/jf_alpha", headers=headers)
    assert denied.status_code == 403 and "manage" in denied.json()["detail"]["message"]
    assert client.post("/v1/voices/add", data={"name": "x"}, headers=headers).status_code == 403
    assert client.delete("/v1/voices/jf_alpha", headers={"xi-api-key": "admin-key-123"}).status_code == 200


def test_health_and_docs_stay_open_and_websocket_needs_a_key(keyed):
    client, speak_key = keyed
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/metrics").status_code == 401
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/v1/text-to-speech/{TONE}/stream-input") as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 1008
    with client.websocket_connect(f"/v1/text-to-speech/{TONE}/stream-input?xi_api_key={speak_key}") as ws:
        ws.send_json({"text": "Hi there.", "flush": True})
        assert ws.receive_json()["audio"]


def test_a_key_in_a_websocket_url_never_reaches_the_server_log(settings, make_live_server):
    import logging

    from websockets.sync.client import connect

    server = make_live_server(settings.model_copy(update={"api_keys": ["ws-secret-key-42"]}))
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("uvicorn.error")  # uvicorn logs each WebSocket with its path and query
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        url = server.url.replace("http", "ws") + f"/v1/text-to-speech/{TONE}/stream-input"
        with connect(f"{url}?output_format=pcm_16000&xi_api_key=ws-secret-key-42") as ws:
            ws.send(json.dumps({"text": "Hello there.", "flush": True}))
            assert json.loads(ws.recv(timeout=60))["audio"]
        with pytest.raises(InvalidStatus) as refused:  # closed before the handshake completes
            connect(f"{url}?xi_api_key=ws-wrong-key-43")
        assert refused.value.response.status_code == 403
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert any("stream-input?output_format=pcm_16000" in line for line in lines), lines  # logged, minus the key
    assert not any("secret" in line or "wrong-key" in line for line in lines), lines


def test_revoked_key_stops_working_on_the_running_server(settings, make_client):
    database = Database(settings.db_url)
    store = open_keys(settings, database)
    key, record = store.create("temp", "manage")
    other, _ = store.create("other", "speak")
    client = make_client(settings)
    assert client.get("/v1/voices", headers={"xi-api-key": key}).status_code == 200
    store.revoke(record.id)
    deadline = time.monotonic() + REFRESH_S + 1  # at once from a keys file; within REFRESH_S from a database
    while client.get("/v1/voices", headers={"xi-api-key": key}).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get("/v1/voices", headers={"xi-api-key": key}).status_code == 401
    assert client.get("/v1/voices", headers={"xi-api-key": other}).status_code == 200
    database.close()


def test_keys_cli_creates_lists_revokes_and_never_stores_the_key(tmp_path):
    env = {**os.environ, "VOXCLONE_DATA_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "voxclone.cli", "keys"]
    created = subprocess.run(
        [*cli, "create", "--name", "ci", "--scope", "manage"], capture_output=True, text=True, env=env, check=True
    )
    key = created.stdout.strip()
    assert key.startswith("vxc_") and key not in (tmp_path / "keys.json").read_text()
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, env=env, check=True).stdout
    key_id = listed.split()[0]
    assert "ci" in listed and key not in listed
    subprocess.run([*cli, "revoke", key_id], capture_output=True, text=True, env=env, check=True)
    assert subprocess.run([*cli, "list"], capture_output=True, text=True, env=env, check=True).stdout == ""
    bad = subprocess.run([*cli, "revoke", "nope"], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "no key" in bad.stderr


def test_serve_refuses_a_public_address_without_keys(tmp_path):
    env = {**os.environ, "VOXCLONE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "voxclone.cli", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0 and "no API keys" in result.stderr


@pytest.fixture
def cors(settings, make_client):
    return make_client(
        settings.model_copy(update={"cors_origins": ["https://app.example.org", "https://*.example.com"]})
    )


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.org", True),
        ("https://studio.example.com", True),
        ("https://a.b.example.com", True),
        ("https://example.com", False),  # the wildcard is for subdomains only
        ("https://evilexample.com", False),
        ("https://example.com.evil.net", False),
        ("http://studio.example.com", False),  # scheme matters
        ("https://app.example.org.evil.net", False),
    ],
)
def test_cors_allows_exact_and_wildcard_origins_only(cors, origin, allowed):
    preflight = cors.options(
        "/v1/audio/speech",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    got = preflight.headers.get("access-control-allow-origin")
    assert (got == origin) is allowed
    simple = cors.get("/v1/voices", headers={"Origin": origin})
    assert (simple.headers.get("access-control-allow-origin") == origin) is allowed


@pytest.mark.parametrize("bad", ["*", "https://*", "https://ex*ample.com", "*.example.com", "https://example.com/path"])
def test_bad_cors_origins_are_refused_at_start_up(bad):
    with pytest.raises(ValueError, match="not allowed"):
        origin_pattern([bad])


def test_rate_limit_gives_429_with_retry_after_naming_the_limit(settings, make_client):
    client = make_client(settings.model_copy(update={"rate_limit": "3/minute"}))
    codes = [client.get("/v1/voices").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/v1/voices")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"]["limit"] == "rate_limit"
    assert client.get("/health").status_code == 200  # health checks are never limited


def test_upload_over_the_size_limit_is_413(settings, make_client):
    client = make_client(settings.model_copy(update={"max_upload_bytes": 100_000}))
    response = client.post("/v1/voices/add", data={"name": "big"}, files=[("files", ("big.wav", b"\0" * 600_000))])
    assert response.status_code == 413
    assert response.json()["detail"]["limit"] == "max_upload_bytes"


def test_chunked_upload_over_the_limit_is_413(settings, make_client):
    client = make_client(settings.model_copy(update={"max_upload_bytes": 100_000}))

    def chunks():
        for _ in range(10):
            yield b"x" * 50_000

    response = client.post(
        "/v1/voices/add", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert response.status_code == 413


def test_voice_count_limit_is_enforced(settings, make_client):
    client = make_client(settings.model_copy(update={"max_voices": 1}))
    library = client.app.state.runtime.library
    library.create(name="one", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")
    response = client.post(
        "/v1/voices/add",
        data={"name": "two"},
        files=[("files", ("a.flac", (SHARED_DATA / "103-1240-0000.flac").read_bytes()))],
    )
    assert response.status_code == 413 and response.json()["detail"]["limit"] == "max_voices"


def _wav_header(rate: int, frames_claimed: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * 100)
    data = bytearray(buffer.getvalue())
    data[40:44] = (frames_claimed * 2 & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("zero.wav", b""),
        ("header-only.wav", _wav_header(16_000, 0)[:44]),
        ("ten-hours.wav", _wav_header(16_000, 16_000 * 36_000)),  # the header claims 10 h; 100 samples follow
        ("absurd-rate.wav", _wav_header(4_000_000_000 & 0x7FFFFFFF, 100)),
        ("bomb.zip", b"PK\x03\x04" + b"\0" * 2000),
        ("random.mp3", os.urandom(5000)),
        ("../../etc/passwd", b"RIFF....WAVEfmt "),
    ],
)
def test_hostile_or_broken_audio_is_a_clear_4xx(client, settings, name, payload):
    response = client.post("/v1/voices/add", data={"name": "hostile"}, files=[("files", (name, payload))])
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]["message"]
    assert client.get("/v1/voices/hostile").status_code == 404


@pytest.mark.parametrize("rate", [3, 1_000_000, 0x7FFFFFFF])
def test_absurd_sample_rates_are_refused_before_decoding(client, rate):
    response = client.post(
        "/v1/voices/add", data={"name": "odd-rate"}, files=[("files", ("odd.wav", _wav_header(rate, 100)))]
    )
    assert response.status_code == 422
    assert f"sample rate of {rate} Hz" in response.json()["detail"]["message"]


def test_a_small_file_that_expands_to_half_an_hour_is_refused_by_duration(client):
    from voxclone.audio import OutputFormat, encode

    bomb = encode(np.zeros(8000 * 1800, np.float32), 8000, OutputFormat("flac"))  # 30 min of silence
    assert len(bomb) < 1_000_000  # well under the upload limit: only the decoded length can catch it
    response = client.post("/v1/voices/add", data={"name": "bomb"}, files=[("files", ("bomb.flac", bomb))])
    assert response.status_code == 413
    assert response.json()["detail"]["limit"] == "max_upload_seconds"
    assert client.get("/v1/voices/bomb").status_code == 404


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01\x02 hello \x1b[31m",
        "\u202e\u200f reversed \ufeff",
        "😀🎉 emoji only 🚀",
        "e\u0301" * 60,
        "\ud800 lone surrogate".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    ],
)
def test_unicode_edge_cases_and_control_characters_never_500(client, text):
    response = client.post("/v1/audio/speech", json={"input": text, "voice": TONE, "response_format": "pcm"})
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("voice", ["../../etc/passwd", "..", "%2e%2e", "a/b", "voices.sqlite3", "x" * 5000])
def test_path_like_voice_names_are_404_and_touch_nothing(client, settings, voice):
    before = sorted(p.name for p in settings.data_dir.rglob("*"))
    response = client.post(f"/v1/text-to-speech/{voice}", json={"text": "Hi."})
    assert response.status_code in (404, 422)
    assert client.delete(f"/v1/voices/{voice}").status_code in (404, 405, 422)
    assert sorted(p.name for p in settings.data_dir.rglob("*")) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{bad json", "application/json"),
        (b"[1,2,3]", "application/json"),
        (b'{"input": {"x": 1}, "voice": []}', "application/json"),
        (b"input=hi", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies_are_422(client, body, content_type):
    response = client.post("/v1/audio/speech", content=body, headers={"content-type": content_type})
    assert response.status_code == 422


def test_cors_preflight_lets_the_official_sdks_send_their_headers_from_a_browser(cors):
    sdk_headers = "authorization,content-type,x-stainless-lang,x-stainless-retry-count,xi-api-key,x-fern-sdk-name"
    preflight = cors.options(
        "/v1/audio/speech",
        headers={
            "Origin": "https://app.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": sdk_headers,
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.org"
    assert set(preflight.headers["access-control-allow-headers"].lower().replace(" ", "").split(",")) >= set(
        sdk_headers.split(",")
    )
