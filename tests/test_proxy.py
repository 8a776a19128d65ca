"""Behind a reverse proxy: a real nginx (Debian's) in front of a live server on loopback.

Streaming, server-sent events and WebSockets through it; the client address from trusted proxies only
(separate rate-limit buckets, headers from anyone else ignored); no unauthenticated server opened by a
proxy or tunnel; a sub-path; and the address rules themselves on their own.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import httpx
import pytest
from conftest import TONE
from issuer import AUDIENCE, LoopbackIssuer
from reverse_proxy import Nginx, free_port, nginx_available
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from voxclone.server.proxy import TrustedProxies

TEXT = "The keeper climbed the stairs every evening. He lit the lamp, and watched the ships pass through the channel."
SPEAK = {"input": "Hello.", "voice": TONE, "response_format": "pcm"}


@pytest.fixture(scope="module")
def nginx_binary() -> None:
    if not nginx_available():
        pytest.fail("Debian's nginx is required for the reverse-proxy tests (scripts/test.sh installs it)")


@pytest.fixture
def proxied(make_live_server, nginx_binary):
    """A factory: a live server with these settings, and nginx in front of it."""
    proxies: list[Nginx] = []

    def make(settings):
        server = make_live_server(settings)
        proxy = Nginx(server.port).__enter__()
        proxies.append(proxy)
        return server, proxy

    yield make
    for proxy in proxies:
        proxy.__exit__(None, None, None)


@pytest.fixture
def public(settings):
    """No keys, but started with --allow-public: proxied visitors are served."""
    return settings.model_copy(update={"allow_public_without_keys": True})


def _access_log() -> tuple[list[str], logging.Handler]:
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    return lines, handler


# ---- streaming, SSE and WebSockets through nginx ---------------------------------------------


@pytest.mark.slow
def test_streamed_audio_starts_through_nginx_before_the_whole_text_is_synthesised(proxied, public):
    server, proxy = proxied(public)
    url = proxy.url + "/voice/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000"
    with httpx.Client(timeout=120) as client, client.stream("POST", url, json={"text": TEXT}) as response:
        assert response.status_code == 200
        assert "no-transform" in response.headers["cache-control"]
        chunks = response.iter_bytes()
        first = next(c for c in chunks if c)
        synthesised_at_first_chunk = server.metric("voxclone_audio_seconds")
        rest = b"".join(chunks)
    total = len(first + rest) / 2 / 24_000
    assert total > 3
    assert synthesised_at_first_chunk < 0.5 * total


def test_streamed_responses_tell_proxies_not_to_buffer_or_transform(live_server):
    body = {**SPEAK, "input": "Short.", "stream": True}
    with (
        httpx.Client(base_url=live_server.url, timeout=60) as client,
        client.stream("POST", "/v1/audio/speech", json=body) as r,
    ):
        assert r.headers["x-accel-buffering"] == "no"  # nginx reads and drops it, so it is checked direct
        assert set(r.headers["cache-control"].replace(" ", "").split(",")) >= {"no-store", "no-transform"}


@pytest.mark.slow
def test_server_sent_events_arrive_through_nginx_as_they_are_made(proxied, public):
    server, proxy = proxied(public)
    body = {"input": TEXT, "voice": "jm_kumo", "response_format": "pcm", "stream_format": "sse"}
    events, synthesised_at_first = [], None
    with (
        httpx.Client(timeout=120) as client,
        client.stream("POST", proxy.url + "/voice/v1/audio/speech", json=body) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if synthesised_at_first is None:
                    synthesised_at_first = server.metric("voxclone_audio_seconds")
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) > 1 and events[-1]["type"] == "speech.audio.done"
    total = sum(len(e["audio"]) * 3 / 4 for e in deltas) / 2 / 24_000
    assert synthesised_at_first is not None and synthesised_at_first < 0.5 * total


def test_websocket_stream_input_works_through_nginx_under_a_sub_path(proxied, public):
    _, proxy = proxied(public)
    url = proxy.url.replace("http", "ws") + f"/voice/v1/text-to-speech/{TONE}/stream-input?output_format=pcm_16000"
    with connect(url) as ws:
        ws.send(json.dumps({"text": " ", "voice_settings": {"speed": 1.0}}))
        ws.send(json.dumps({"text": "Hello through the proxy.", "flush": True}))
        first = json.loads(ws.recv(timeout=60))
        ws.send(json.dumps({"text": ""}))
        replies = [first]
        while not replies[-1].get("isFinal"):
            replies.append(json.loads(ws.recv(timeout=60)))
    audio = [r for r in replies if r.get("audio")]
    assert audio and sum(len(r["audio"]) for r in audio) > 10_000


# ---- the client's address ------------------------------------------------------------------


def test_two_forwarded_clients_have_separate_rate_limit_buckets_and_log_lines(proxied, public):
    _, proxy = proxied(public.model_copy(update={"rate_limit": "2/minute"}))
    lines, handler = _access_log()
    log = logging.getLogger("uvicorn.access")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with httpx.Client(base_url=proxy.url, timeout=30) as client:

            def get(address: str) -> int:
                return client.get("/v1/voices", headers={"X-Forwarded-For": address}).status_code

            # nginx appends its own peer (127.0.0.1, a trusted proxy): the chain is "203.0.113.5, 127.0.0.1".
            assert [get("203.0.113.5") for _ in range(3)] == [200, 200, 429]
            assert get("198.51.100.7") == 200
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert any(line.startswith("203.0.113.5:") and "/v1/voices" in line for line in lines), lines
    assert any(line.startswith("198.51.100.7:") for line in lines), lines


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(proxied, public):
    # Only 192.0.2.1 is trusted, so nginx on 127.0.0.1 and direct clients alike are taken at their word.
    server, proxy = proxied(public.model_copy(update={"rate_limit": "3/minute", "trusted_proxies": ["192.0.2.1"]}))
    with httpx.Client(timeout=30) as client:
        codes = [
            client.get(proxy.url + "/v1/voices", headers={"X-Forwarded-For": "203.0.113.1"}).status_code,
            client.get(server.url + "/v1/voices", headers={"CF-Connecting-IP": "203.0.113.2"}).status_code,
            client.get(server.url + "/v1/voices", headers={"Forwarded": "for=203.0.113.3"}).status_code,
            client.get(proxy.url + "/v1/voices", headers={"X-Forwarded-For": "203.0.113.4"}).status_code,
        ]
    assert codes == [200, 200, 200, 429]  # one bucket: 127.0.0.1


# ---- no unauthenticated server through a proxy ------------------------------------------------


def test_without_keys_proxied_requests_are_refused_once_logged_and_direct_ones_work(proxied, settings, caplog):
    server, proxy = proxied(settings)
    with caplog.at_level(logging.WARNING, logger="voxclone.server"), httpx.Client(timeout=60) as client:
        refused = client.get(proxy.url + "/v1/voices")
        assert refused.status_code == 403
        message = refused.json()["detail"]["message"]
        assert "voxclone keys create" in message and "VOXCLONE_API_KEYS" in message and "--allow-public" in message
        assert client.post(proxy.url + "/voice/v1/audio/speech", json=SPEAK).status_code == 403
        # A forged header straight to the server counts too: any forwarding header for someone else.
        assert client.get(server.url + "/v1/voices", headers={"CF-Connecting-IP": "203.0.113.9"}).status_code == 403
        with pytest.raises(InvalidStatus) as ws_refused:
            connect(proxy.url.replace("http", "ws") + f"/v1/text-to-speech/{TONE}/stream-input")
        assert ws_refused.value.response.status_code == 403
        assert client.get(proxy.url + "/voice/").status_code == 200  # the page loads, and shows the advice
        assert client.get(server.url + "/v1/voices").status_code == 200
        assert client.post(server.url + "/v1/audio/speech", json=SPEAK).status_code == 200
    warnings = [r for r in caplog.records if "voxclone keys create" in r.getMessage()]
    assert len(warnings) == 1


def test_with_keys_or_tokens_proxied_requests_are_authenticated_not_refused(proxied, settings):
    with LoopbackIssuer() as issuer:
        _, proxy = proxied(
            settings.model_copy(
                update={"api_keys": ["proxy-key"], "oidc_issuer": issuer.url, "oidc_audience": [AUDIENCE]}
            )
        )
        with httpx.Client(base_url=proxy.url + "/voice", timeout=30) as client:
            assert client.get("/v1/voices").status_code == 401
            assert client.get("/v1/voices", headers={"Authorization": "Bearer proxy-key"}).status_code == 200
            # As cloudflared passes on Cloudflare Access's assertion:
            assertion = issuer.token(scope="speak")
            assert client.get("/v1/voices", headers={"Cf-Access-Jwt-Assertion": assertion}).status_code == 200
            expired = issuer.token(scope="speak", ttl=-600)
            assert client.get("/v1/voices", headers={"Cf-Access-Jwt-Assertion": expired}).status_code == 401


def test_serve_warns_at_start_up_when_set_up_for_a_tunnel_without_keys(tmp_path):
    env = {**os.environ, "VOXCLONE_DATA_DIR": str(tmp_path), "VOXCLONE_TRUSTED_PROXIES": "10.0.0.0/8"}
    command = [sys.executable, "-m", "voxclone.cli", "serve", "--lazy", "--port", str(free_port())]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("voxclone serving" in line for line in seen):
            seen.append(process.stderr.readline())
            if not seen[-1] and process.poll() is not None:
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()
    output = "".join(seen)
    assert "warning: set up for a proxy or tunnel" in output and "voxclone keys create" in output, output
    assert "10.0.0.0/8" in output


# ---- a sub-path ------------------------------------------------------------------------------


def test_root_path_serves_page_docs_api_and_websockets_under_a_prefix_the_proxy_keeps(proxied, public):
    server, proxy = proxied(public.model_copy(update={"root_path": "/kept"}))
    with httpx.Client(base_url=proxy.url, timeout=30) as client:
        page = client.get("/kept/")
        assert page.status_code == 200 and 'src="web/app.js"' in page.text
        assert client.get("/kept/web/app.js").status_code == 200
        assert client.get("/kept/v1/voices").status_code == 200
        assert "/kept/openapi.json" in client.get("/kept/docs").text
        assert client.get("/kept/openapi.json").status_code == 200
    with connect(proxy.url.replace("http", "ws") + f"/kept/v1/text-to-speech/{TONE}/stream-input") as ws:
        ws.send(json.dumps({"text": ""}))
        assert json.loads(ws.recv(timeout=30))["isFinal"] is True
    assert httpx.get(server.url + "/v1/voices", timeout=30).status_code == 200  # direct, without the prefix
    redirect = httpx.get(server.url + "/kept?api=x", timeout=30)  # a proxy that passes "/kept" on as it is
    assert redirect.status_code == 308 and redirect.headers["location"] == "/kept/?api=x"


def test_a_root_path_does_not_change_what_a_key_may_do(settings, make_client):
    from contextlib import closing

    from voxclone.database import Database
    from voxclone.key_store import open_keys

    with closing(Database(settings.db_url)) as database:  # the keys file, or the shared database
        speak_key, _ = open_keys(settings, database).create("reader", "speak")
    client = make_client(settings.model_copy(update={"root_path": "/voice"}))
    headers = {"xi-api-key": speak_key}
    assert client.delete("/voice/v1/voices/jf_alpha", headers=headers).status_code == 403
    assert client.delete("/v1/voices/jf_alpha", headers=headers).status_code == 403
    assert client.get("/voice/v1/voices", headers=headers).status_code == 200
    assert client.get("/voice/v1/voices").status_code == 401
    assert client.get("/voice/health").status_code == 200


# ---- the address rules -------------------------------------------------------------------------

TRUSTED = TrustedProxies(["127.0.0.0/8", "::1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("198.51.100.7", {"x-forwarded-for": "1.2.3.4"}, "198.51.100.7"),  # untrusted peer: its headers are ignored
        ("198.51.100.7", {"cf-connecting-ip": "1.2.3.4"}, "198.51.100.7"),
        ("127.0.0.1", {}, "127.0.0.1"),
        ("127.0.0.1", {"x-forwarded-for": "1.2.3.4"}, "1.2.3.4"),
        ("127.0.0.1", {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.2"}, "1.2.3.4"),  # right-most untrusted hop
        ("127.0.0.1", {"x-forwarded-for": "10.0.0.1, 10.0.0.2"}, "10.0.0.1"),
        ("127.0.0.1", {"x-forwarded-for": "1.2.3.4:5678"}, "1.2.3.4"),
        ("127.0.0.1", {"x-forwarded-for": "[2001:db8::5]:443"}, "2001:db8::5"),
        ("127.0.0.1", {"x-forwarded-for": "unknown, 10.0.0.2"}, "10.0.0.2"),  # garbage stops at its reporter
        ("127.0.0.1", {"forwarded": 'for="[2001:db8:cafe::17]:4711"'}, "2001:db8:cafe::17"),
        ("127.0.0.1", {"forwarded": "for=192.0.2.60;proto=https;by=203.0.113.43, for=10.0.0.3"}, "192.0.2.60"),
        ("127.0.0.1", {"forwarded": "for=_hidden"}, "127.0.0.1"),
        ("127.0.0.1", {"cf-connecting-ip": "203.0.113.9"}, "203.0.113.9"),
        ("127.0.0.1", {"cf-connecting-ip": "203.0.113.9", "x-forwarded-for": "1.2.3.4"}, "1.2.3.4"),
        ("127.0.0.1", {"forwarded": "for=9.9.9.9", "x-forwarded-for": "1.2.3.4"}, "1.2.3.4"),
        ("::ffff:127.0.0.1", {"x-forwarded-for": "1.2.3.4"}, "1.2.3.4"),
        ("testclient", {"x-forwarded-for": "1.2.3.4"}, "testclient"),
    ],
)
def test_the_client_address_comes_from_trusted_proxies_only(peer, headers, client):
    assert TRUSTED.client(peer, headers) == client


def test_the_scheme_comes_from_trusted_proxies_only():
    assert TRUSTED.scheme("127.0.0.1", {"x-forwarded-proto": "https"}) == "https"
    assert TRUSTED.scheme("127.0.0.1", {"forwarded": "for=1.2.3.4;proto=https"}) == "https"
    assert TRUSTED.scheme("198.51.100.7", {"x-forwarded-proto": "https"}) is None
    assert TRUSTED.scheme("127.0.0.1", {"x-forwarded-proto": "gopher"}) is None
