"""The official Python SDKs (`openai`, `elevenlabs`, pinned in the `test` extra) against a live server:
every call in tests/sdk/calls.json, checked for what a user notices (audio that decodes at the
right rate, ids, typed errors carrying voxclone's message).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from conftest import (
    OPENAI_FORMAT_RATES,
    REPO,
    SDK_KEY,
    SHARED_DATA,
    TONE,
    Checks,
    LiveServer,
    decode_audio,
    sdk_app,
    sdk_calls,
)

openai = pytest.importorskip("openai")
elevenlabs = pytest.importorskip("elevenlabs")
from elevenlabs import VoiceSettings  # noqa: E402
from elevenlabs.client import ElevenLabs  # noqa: E402
from elevenlabs.core import ApiError  # noqa: E402

pytestmark = pytest.mark.slow  # the official SDKs against a live server

PYTHON_CALLS = sdk_calls("python")
TEXT = "Hello there, and welcome."
TWO_SENTENCES = "Hello there, and welcome to the show. We have a great deal to talk about today."
CLIP = SHARED_DATA / "103-1240-0000.flac"


class Clients:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.openai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=SDK_KEY, max_retries=0)
        self._http = httpx.Client(timeout=240)  # ElevenLabs' client does not close the one it makes
        self.elevenlabs = ElevenLabs(base_url=server.url, api_key=SDK_KEY, httpx_client=self._http)

    def close(self) -> None:
        self.openai.close()
        self._http.close()

    def clone(self, name: str) -> str:
        """A new cloned voice through the SDK, once it is ready to speak."""
        with open(CLIP, "rb") as recording:
            voice_id = self.elevenlabs.voices.ivc.create(name=name, files=[recording]).voice_id
        deadline = time.monotonic() + 60
        while (voice := self.elevenlabs.voices.get(voice_id)).status == "enrolling":  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "enrolment did not finish"
            time.sleep(0.2)
        assert voice.status == "ready", voice  # type: ignore[attr-defined]
        return voice_id

    def seconds(self, voice_id: str, **options: object) -> float:
        pcm = b"".join(
            self.elevenlabs.text_to_speech.convert(voice_id, text=TWO_SENTENCES, output_format="pcm_16000", **options)
        )
        return len(pcm) / 2 / 16_000


@pytest.fixture(scope="module")
def clients(sdk_server: LiveServer) -> Iterator[Clients]:
    clients = Clients(sdk_server)
    yield clients
    clients.close()


check = CHECKS = Checks()  # by call id; each listed call must have one


def _speech(audio: bytes, fmt: str, rate: int) -> None:
    samples, got = decode_audio(audio, fmt, rate)
    assert got == rate
    assert 0.8 < samples.size / rate < 4.0 and samples.std() > 0.01


# OpenAI -----------------------------------------------------------------------------------------


def _openai_format(fmt: str, rate: int) -> Callable[[Clients], None]:
    def run(c: Clients) -> None:
        response = c.openai.audio.speech.create(model="tts-1", voice=TONE, input=TEXT, response_format=fmt)
        _speech(response.content, fmt, rate)

    return run


for _fmt, _rate in OPENAI_FORMAT_RATES.items():
    check(f"openai.speech.{_fmt}")(_openai_format(_fmt, _rate))


@check("openai.speech.stream")
def _(c: Clients) -> None:
    with c.openai.audio.speech.with_streaming_response.create(
        model="tts-1", voice=TONE, input=TWO_SENTENCES, response_format="pcm", extra_body={"stream": True}
    ) as response:
        chunks = list(response.iter_bytes())
    assert len(chunks) > 1  # arrived in pieces, as synthesised
    samples, _ = decode_audio(b"".join(chunks), "pcm", 24_000)
    assert 3.0 < samples.size / 24_000 < 9.0


@check("openai.speech.sse")
def _(c: Clients) -> None:
    with c.openai.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    _speech(pcm, "pcm", 24_000)


@check("openai.models.list")
def _(c: Clients) -> None:
    models = list(c.openai.models.list())
    assert {"kokoro", "piper"} <= {m.id for m in models}
    assert all(m.object == "model" and m.created > 0 and m.owned_by == "voxclone" for m in models)


@check("openai.error.not_found")
def _(c: Clients) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        c.openai.audio.speech.create(model="tts-1", voice="nobody-here", input=TEXT)
    assert caught.value.code == "voice_not_found"
    assert "no voice named 'nobody-here'" in caught.value.body["message"]  # type: ignore[index]


@check("openai.error.auth")
def _(c: Clients) -> None:
    wrong = openai.OpenAI(base_url=f"{c.server.url}/v1", api_key="not-the-key", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError) as caught:
        wrong.audio.speech.create(model="tts-1", voice=TONE, input=TEXT)
    assert "valid API key" in caught.value.body["message"]  # type: ignore[index]


# ElevenLabs -------------------------------------------------------------------------------------


@check("elevenlabs.tts.convert")
def _(c: Clients) -> None:
    audio = b"".join(c.elevenlabs.text_to_speech.convert(TONE, text=TEXT, model_id="eleven_multilingual_v2"))
    _speech(audio, "mp3", 44_100)


@check("elevenlabs.tts.convert_pcm")
def _(c: Clients) -> None:
    normal = c.seconds(TONE, voice_settings=VoiceSettings(speed=1.0, stability=0.5))
    fast = c.seconds(TONE, voice_settings=VoiceSettings(speed=2.0, stability=0.5))
    assert fast < 0.7 * normal


@check("elevenlabs.tts.stream")
def _(c: Clients) -> None:
    chunks = list(c.elevenlabs.text_to_speech.stream(TONE, text=TWO_SENTENCES, output_format="pcm_24000"))
    assert len(chunks) > 1
    samples, _ = decode_audio(b"".join(chunks), "pcm", 24_000)
    assert 3.0 < samples.size / 24_000 < 9.0


@check("elevenlabs.tts.realtime")
def _(c: Clients) -> None:
    # The SDK always connects with wss://: serve over TLS, trusting the test's own certificate.
    with tls_server(c.server) as (server, cert):
        client = ElevenLabs(base_url=server.url, api_key=SDK_KEY, httpx_client=c._http)  # wss: no HTTP used
        with pytest.MonkeyPatch.context() as env, warnings.catch_warnings():
            env.setenv("SSL_CERT_FILE", str(cert))
            # The SDK reads ConnectionClosed.code, which websockets deprecates, when the server closes.
            warnings.filterwarnings("ignore", "ConnectionClosed.code is deprecated", DeprecationWarning)
            pieces = ["Hello there, ", "and welcome ", "to the show. ", "We have a lot ", "to talk about."]
            audio = b"".join(client.text_to_speech.convert_realtime(TONE, text=iter(pieces), output_format="pcm_24000"))
    samples, _ = decode_audio(audio, "pcm", 24_000)
    assert 2.0 < samples.size / 24_000 < 9.0 and samples.std() > 0.01


@check("elevenlabs.voices.get_all")
def _(c: Clients) -> None:
    voices = c.elevenlabs.voices.get_all().voices
    by_id = {v.voice_id: v for v in voices}
    assert {"jm_kumo", "jf_alpha", "joe"} <= set(by_id)
    assert by_id["joe"].category == "premade" and by_id["joe"].labels["language"] == "en"
    assert by_id["jm_kumo"].settings.speed == 1.0


@check("elevenlabs.voices.search")
def _(c: Clients) -> None:
    everyone = {v.voice_id for v in c.elevenlabs.voices.get_all().voices}
    seen: list[str] = []
    token = None
    while True:
        page = c.elevenlabs.voices.search(page_size=2, next_page_token=token, sort="name")
        assert page.total_count == len(everyone) and len(page.voices) <= 2
        seen += [v.voice_id for v in page.voices]
        if not page.has_more:
            break
        token = page.next_page_token
    assert sorted(seen) == sorted(everyone) and len(seen) == len(everyone)
    assert [v.voice_id for v in c.elevenlabs.voices.search(search="kumo").voices] == ["jm_kumo"]
    assert {v.category for v in c.elevenlabs.voices.search(category="premade", page_size=100).voices} == {"premade"}
    assert c.elevenlabs.voices.search(voice_type="community").voices == []


@check("elevenlabs.voices.get")
def _(c: Clients) -> None:
    voice = c.elevenlabs.voices.get("jf_alpha")
    assert voice.voice_id == "jf_alpha" and voice.name == "jf_alpha" and voice.category == "premade"


@check("elevenlabs.voices.ivc.create")
def _(c: Clients) -> None:
    voice_id = c.clone("SDK clone")  # no labels: the SDK sends labels=null
    voice = c.elevenlabs.voices.get(voice_id)
    assert voice.name == "SDK clone" and voice.category == "cloned" and voice.labels == {}
    _speech(b"".join(c.elevenlabs.text_to_speech.convert(voice_id, text=TEXT)), "mp3", 44_100)


@check("elevenlabs.voices.ivc.create_duplicate")
def _(c: Clients) -> None:
    with open(CLIP, "rb") as recording:
        first = c.elevenlabs.voices.ivc.create(name="Twin", files=[recording], labels={"accent": "american"}).voice_id
    with open(CLIP, "rb") as recording:
        second = c.elevenlabs.voices.ivc.create(name="twin", files=[recording], description="the other one").voice_id
    assert first != second
    with pytest.raises(ApiError) as caught:
        c.elevenlabs.voices.get("Twin")  # a shared name is ambiguous: the error lists the ids
    assert caught.value.status_code == 409
    assert first in caught.value.body["detail"]["message"] and second in caught.value.body["detail"]["message"]


@check("elevenlabs.voices.update")
def _(c: Clients) -> None:
    voice_id = c.clone("Before")
    assert (
        c.elevenlabs.voices.update(voice_id, name="After", description="renamed", labels={"accent": "british"}).status
        == "ok"
    )
    voice = c.elevenlabs.voices.get(voice_id)
    assert (voice.name, voice.description, voice.labels) == ("After", "renamed", {"accent": "british"})
    c.elevenlabs.voices.update(voice_id, name="After again")  # labels not given: the SDK sends labels=null
    assert c.elevenlabs.voices.get(voice_id).labels == {"accent": "british"}


@check("elevenlabs.voices.delete")
def _(c: Clients) -> None:
    voice_id = c.clone("Short-lived")
    assert c.elevenlabs.voices.delete(voice_id).status == "ok"
    with pytest.raises(ApiError) as caught:
        c.elevenlabs.voices.get(voice_id)
    assert caught.value.status_code == 404


@check("elevenlabs.voices.settings.get_default")
def _(c: Clients) -> None:
    settings = c.elevenlabs.voices.settings.get_default()
    assert (settings.speed, settings.stability, settings.similarity_boost) == (1.0, 0.5, 0.75)


@check("elevenlabs.voices.settings.get")
def _(c: Clients) -> None:
    assert c.elevenlabs.voices.settings.get("jf_alpha").speed == 1.0


@check("elevenlabs.voices.settings.update")
def _(c: Clients) -> None:
    voice_id = c.clone("Quick talker")
    before = c.seconds(voice_id)
    c.elevenlabs.voices.settings.update(voice_id, request=VoiceSettings(speed=2.0, stability=0.3))
    stored = c.elevenlabs.voices.settings.get(voice_id)
    assert (stored.speed, stored.stability, stored.similarity_boost) == (2.0, 0.3, 0.75)
    assert c.seconds(voice_id) < 0.7 * before  # the stored speed is the voice's default now
    assert c.seconds(voice_id, voice_settings=VoiceSettings(speed=1.0)) == pytest.approx(before, rel=0.1)


@check("elevenlabs.models.list")
def _(c: Clients) -> None:
    models = {m.model_id: m for m in c.elevenlabs.models.list()}
    assert {"kokoro", "piper"} <= set(models)
    kokoro = models["kokoro"]
    assert kokoro.can_do_text_to_speech and kokoro.maximum_text_length_per_request == 5000
    assert [language.language_id for language in kokoro.languages] == ["en"]


@check("elevenlabs.user.subscription.get")
def _(c: Clients) -> None:
    before = c.elevenlabs.user.subscription.get()
    b"".join(c.elevenlabs.text_to_speech.convert(TONE, text="Counting these characters."))
    after = c.elevenlabs.user.subscription.get()
    assert after.character_count == before.character_count + len("Counting these characters.")
    assert after.character_limit - after.character_count >= 5000  # room for the longest text one request may send
    assert after.voice_limit == 200 and after.can_use_instant_voice_cloning
    clones = [v for v in c.elevenlabs.voices.get_all().voices if v.category == "cloned"]
    assert after.voice_slots_used == len(clones)


@check("elevenlabs.error.not_found")
def _(c: Clients) -> None:
    with pytest.raises(ApiError) as caught:
        c.elevenlabs.voices.get("nobody-here")
    assert caught.value.status_code == 404
    assert caught.value.body["detail"] == {
        "status": "voice_not_found",
        "message": "no voice named 'nobody-here'; GET /v1/voices lists them",
    }


@check("elevenlabs.error.auth")
def _(c: Clients) -> None:
    with pytest.raises(ApiError) as caught:
        ElevenLabs(base_url=c.server.url, api_key="not-the-key", httpx_client=c._http).voices.get_all()
    assert caught.value.status_code == 401 and "valid API key" in caught.value.body["detail"]["message"]


# The suite itself ---------------------------------------------------------------------------------


class tls_server:
    """A second live server, over TLS, with a throwaway self-signed certificate."""

    def __init__(self, plain: LiveServer) -> None:
        runtime = plain.app.state.runtime  # the session's engines and listeners, shared
        self.engines, self.listeners = runtime.engines, runtime.listeners
        self.tone_model = runtime.settings.extra_voice_paths[0]

    def __enter__(self) -> tuple[LiveServer, Path]:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        cert, key = Path(self._dir.name) / "cert.pem", Path(self._dir.name) / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        app = sdk_app(self.engines, self.listeners, Path(self._dir.name) / "data", self.tone_model)
        self._server = LiveServer(app, tls=(cert, key)).__enter__()
        return self._server, cert

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)
        self._dir.cleanup()


@pytest.mark.parametrize("call", PYTHON_CALLS, ids=[c["id"] for c in PYTHON_CALLS])
def test_python_sdk_call_works_against_voxclone(clients: Clients, call: dict) -> None:
    CHECKS[call["id"]](clients)


def test_every_documented_python_call_is_checked() -> None:
    assert set(CHECKS) == {c["id"] for c in PYTHON_CALLS}


def test_the_sdks_under_test_are_the_pinned_ones() -> None:
    pins = (REPO / "pyproject.toml").read_text()
    for package in ("openai", "elevenlabs"):
        assert f'"{package}=={version(package)}"' in pins, (
            f"{package} {version(package)} is not the version pinned in pyproject.toml"
        )
