"""What clients ask before they speak: /v1/models in each SDK's shape, /v1/user/subscription's real limits."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("headers", "shape"),
    [
        ({}, "openai"),
        ({"Authorization": "Bearer k", "X-Stainless-Lang": "python"}, "openai"),
        ({"xi-api-key": "k"}, "elevenlabs"),
        ({"X-Fern-SDK-Name": "@elevenlabs/elevenlabs-js"}, "elevenlabs"),
    ],
)
def test_models_are_listed_in_the_shape_of_the_client_that_asks(settings, make_client, headers, shape):
    client = make_client(settings.model_copy(update={"max_text_chars": 1234}))
    body = client.get("/v1/models", headers=headers).json()
    if shape == "openai":
        assert body["object"] == "list"
        assert {"kokoro", "piper", "tone"} <= {m["id"] for m in body["data"]}
        xtts = next(m for m in body["data"] if m["id"] == "xtts")
        assert not xtts["available"] and xtts["fix"]  # off here, and it says how to turn it on
        assert all(m["object"] == "model" and m["created"] > 1_600_000_000 for m in body["data"])
    else:
        models = {m["model_id"]: m for m in body}
        assert {"kokoro", "piper", "tone"} <= set(models) and models["kokoro"]["available"]
        assert models["kokoro"]["maximum_text_length_per_request"] == 1234
        assert models["piper"]["languages"] == [{"language_id": "en", "name": "English"}]


def test_models_errors_take_the_asking_clients_shape(settings, make_client):
    client = make_client(settings.model_copy(update={"api_keys": ["right"]}))
    openai = client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert openai.status_code == 401 and openai.json()["error"]["type"] == "authentication_error"
    elevenlabs = client.get("/v1/models", headers={"xi-api-key": "wrong"})
    assert elevenlabs.status_code == 401 and elevenlabs.json()["detail"]["status"] == "unauthorized"


def test_subscription_reports_usage_and_what_the_limits_leave(settings, make_client):
    client = make_client(
        settings.model_copy(update={"rate_limit": "10/minute", "max_text_chars": 100, "max_voices": 7})
    )
    first = client.get("/v1/user/subscription").json()
    assert first["character_count"] == 0
    assert first["character_limit"] == 9 * 100  # 9 requests left in this minute, 100 characters each
    assert (first["voice_limit"], first["voice_slots_used"], first["max_characters_per_request"]) == (7, 0, 100)
    client.post("/v1/text-to-speech/jm_kumo", json={"text": "Twelve chars"})
    client.get("/speak_as/jm_kumo", params={"prompt": "Twelve chars"})  # a cache miss and a hit both count
    client.app.state.runtime.library.create(name="c", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")
    second = client.get("/v1/user/subscription").json()
    assert second["character_count"] == 24
    assert second["character_limit"] - second["character_count"] == 6 * 100
    assert second["voice_slots_used"] == 1
    assert second["next_character_count_reset_unix"] >= first["next_character_count_reset_unix"]


def test_subscription_without_a_rate_limit_leaves_room_for_any_request(settings, make_client):
    client = make_client(settings.model_copy(update={"rate_limit": ""}))
    body = client.get("/v1/user/subscription").json()
    assert body["character_limit"] - body["character_count"] == 2**31 - 1 and body["rate_limit"] is None
