"""Every documented error: JSON with a message and the right status, never a 500."""

from __future__ import annotations

import pytest
from conftest import TONE


def _message(response) -> str:
    """The message, in OpenAI's error shape on its routes and ElevenLabs' everywhere else, never both."""
    body = response.json()
    if response.request.url.path.startswith("/v1/audio/"):
        assert set(body) == {"error"} and body["error"]["type"] and body["error"]["code"], body
        return body["error"]["message"]
    assert set(body) == {"detail"} and body["detail"]["status"], body
    return body["detail"]["message"]


def test_unknown_voice_is_404_with_a_hint(client):
    response = client.get("/speak_as/nobody", params={"prompt": "Hello."})
    assert response.status_code == 404
    assert "GET /v1/voices" in _message(response)
    assert client.get("/v1/voices/nobody").status_code == 404
    assert client.delete("/v1/voices/nobody").status_code == 404
    assert client.post("/v1/text-to-speech/nobody", json={"text": "Hi."}).status_code == 404


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "needle"),
    [
        ("get", f"/speak_as/{TONE}", {"params": {"prompt": "Hi.", "speed": "fast"}}, "speed"),
        ("get", f"/speak_as/{TONE}", {"params": {"prompt": "Hi.", "speed": 9}}, "speed"),
        ("get", f"/speak_as/{TONE}", {"params": {}}, "prompt"),
        ("get", f"/speak_as/{TONE}", {"params": {"prompt": "Hi.", "bypass_cache": "perhaps"}}, "bypass_cache"),
        ("post", "/v1/audio/speech", {"json": {"voice": TONE}}, "input"),
        (
            "post",
            "/v1/audio/speech",
            {"json": {"input": "Hi.", "voice": TONE, "response_format": "wma"}},
            "response_format",
        ),
        ("post", "/v1/audio/speech", {"json": {"input": "Hi.", "voice": TONE, "speed": 0.1}}, "speed"),
        (
            "post",
            "/v1/audio/speech",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "JSON",
        ),
        ("post", f"/v1/text-to-speech/{TONE}", {"json": {"text": 5}}, "text"),
        ("post", f"/v1/text-to-speech/{TONE}?output_format=mp3_1_2", {"json": {"text": "Hi."}}, "output_format"),
        ("post", f"/v1/text-to-speech/{TONE}?output_format=opus_44100_64", {"json": {"text": "Hi."}}, "opus"),
    ],
)
def test_bad_parameters_are_422_and_name_the_problem(client, method, url, kwargs, needle):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 422, response.text
    assert needle.lower() in _message(response).lower()


def test_text_with_nothing_speakable_is_422(client):
    response = client.post("/v1/audio/speech", json={"input": "... !!! ---", "voice": TONE})
    assert response.status_code == 422
    assert "speakable" in _message(response)


def test_text_over_the_limit_is_413_naming_the_limit(settings, make_client):
    client = make_client(settings.model_copy(update={"max_text_chars": 50}))
    response = client.post("/v1/audio/speech", json={"input": "word " * 20, "voice": TONE})
    assert response.status_code == 413
    assert response.json()["error"]["limit"] == "max_text_chars"


def test_speaking_a_voice_that_is_not_ready_is_409(client):
    library = client.app.state.runtime.library
    library.create(name="half", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned", status="enrolling")
    response = client.get("/speak_as/half", params={"prompt": "Hi."})
    assert response.status_code == 409
    assert "enrolling" in _message(response)
    voice = library.get("half")
    library.update(voice.id, status="failed", error="reference was silent")
    response = client.get("/speak_as/half", params={"prompt": "Hi."})
    assert response.status_code == 409
    assert "reference was silent" in _message(response)


def test_unknown_route_is_json_404(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["detail"]["message"]
