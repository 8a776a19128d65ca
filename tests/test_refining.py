"""Refining tiers (the deep clone) through the API, with the tone engine's quick cloners: the voice speaks
with its instant clone first, the refinement shows its progress, replaces the voice only when better,
survives a restart, and stops when the voice is deleted. The real deep fit is tests/test_deep_clone.py."""

from __future__ import annotations

import time

import pytest
from conftest import SHARED_DATA, decode_audio
from fastapi.testclient import TestClient
from tone_cloner import ToneCloner, ToneRefiner

from voxclone.cloning import Cloners
from voxclone.runtime import Parts, Runtime
from voxclone.server import create_app

CLIP = SHARED_DATA / "103-1240-0000.flac"


@pytest.fixture
def tone_settings(settings):
    return settings.model_copy(update={"clone_engine": "tone", "rate_limit": "10000/minute"})  # polled often


def _parts(refiner: ToneRefiner | None) -> Parts:
    return Parts(cloners=Cloners([ToneCloner(), *([refiner] if refiner else [])]))


def _add(client: TestClient, tier: str | None = "deep") -> str:
    data = {"name": "Reader", **({"tier": tier} if tier else {})}
    response = client.post("/v1/voices/add", data=data, files=[("files", ("me.flac", CLIP.read_bytes()))])
    assert response.status_code == 200, response.text
    return str(response.json()["voice_id"])


def _wait(client: TestClient, voice_id: str, until, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        voice = client.get(f"/v1/voices/{voice_id}").json()
        if until(voice):
            return voice
        time.sleep(0.1)
    pytest.fail(f"voice never got there: {voice}")


def _running(voice: dict) -> bool:
    return (
        voice["refining"] is not None and voice["refining"]["status"] == "running" and voice["refining"]["progress"] > 0
    )


def _ended(voice: dict) -> bool:
    return voice["refining"] is not None and voice["refining"]["status"] not in ("queued", "running")


def _speech(client: TestClient, voice_id: str) -> bytes:
    response = client.get(f"/speak_as/{voice_id}", params={"prompt": "Hello there."})
    assert response.status_code == 200, response.text
    return response.content


def test_a_deep_clone_speaks_with_its_instant_clone_at_once_then_with_the_refinement(tone_settings, make_client):
    client = make_client(tone_settings, _parts(ToneRefiner(steps=40, step_s=0.1)))
    voice_id = _add(client)
    voice = _wait(client, voice_id, _running)
    assert voice["status"] == "ready" and voice["tier"] == "instant"
    instant = _speech(client, voice_id)  # it speaks while the refinement runs
    refining = voice["refining"]
    assert refining["tier"] == "deep" and "fitting" in refining["message"] and 0 < refining["eta_s"] <= 4.0
    voice = _wait(client, voice_id, _ended)
    assert voice["refining"]["status"] == "done" and voice["refining"]["eta_s"] is None
    assert voice["tier"] == "deep" and voice["status"] == "ready" and voice["scores"]["deep_similarity"] == 0.9
    deep = _speech(client, voice_id)
    assert deep != instant  # the refined voice, not a cached clip of the instant one
    assert decode_audio(deep)[1] == 16_000


def test_a_refinement_judged_no_better_leaves_the_instant_voice_as_it_was(tone_settings, make_client):
    client = make_client(tone_settings, _parts(ToneRefiner(outcome="not better")))
    voice_id = _add(client)
    voice = _wait(client, voice_id, _ended)
    assert voice["refining"]["status"] == "done"
    assert voice["refining"]["message"] == "kept instant: not closer to the speaker"
    assert voice["tier"] == "instant" and voice["status"] == "ready" and voice["error"] is None
    assert voice["scores"]["deep_similarity"] == 0.1 and "f0_reference" in voice["scores"]
    _speech(client, voice_id)


def test_a_failed_refinement_leaves_the_voice_speaking(tone_settings, make_client):
    client = make_client(tone_settings, _parts(ToneRefiner(outcome="fail")))
    voice_id = _add(client)
    voice = _wait(client, voice_id, _ended)
    assert voice["refining"]["status"] == "failed" and "stopped by the test" in voice["refining"]["message"]
    assert voice["tier"] == "instant" and voice["status"] == "ready" and voice["error"] is None
    _speech(client, voice_id)


def test_deleting_a_voice_stops_its_refinement(tone_settings, make_client):
    refiner = ToneRefiner(steps=600, step_s=0.05)
    client = make_client(tone_settings, _parts(refiner))
    voice_id = _add(client)
    _wait(client, voice_id, _running)
    assert client.delete(f"/v1/voices/{voice_id}").status_code == 200
    assert refiner.stopped.wait(5)  # at its next progress report, not after its 30 s
    deadline = time.monotonic() + 5
    while (tone_settings.voices_dir / voice_id).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tone_settings.voices_dir / voice_id).exists()  # nothing it wrote while it stopped is left


def test_a_restart_mid_refinement_resumes_from_its_checkpoint(tone_settings, engines, listeners):
    first = ToneRefiner(steps=60, step_s=0.05)
    with TestClient(
        create_app(tone_settings, runtime=Runtime(tone_settings, Parts(engines, _parts(first).cloners, listeners)))
    ) as client:
        voice_id = _add(client)
        _wait(client, voice_id, lambda v: _running(v) and v["refining"]["progress"] >= 0.2)
    assert first.stopped.wait(5)  # the server stopped, and the refinement with it
    second = ToneRefiner(steps=60, step_s=0.05)
    with TestClient(
        create_app(tone_settings, runtime=Runtime(tone_settings, Parts(engines, _parts(second).cloners, listeners)))
    ) as client:
        assert client.get(f"/v1/voices/{voice_id}").json()["tier"] == "instant"
        voice = _wait(client, voice_id, _ended)
    assert voice["refining"]["status"] == "done" and voice["tier"] == "deep"
    assert second.resumed_from[0] >= 12  # from its checkpoint, not from the start


def test_edit_with_tier_deep_refines_a_ready_voice_and_refuses_what_it_cannot(tone_settings, make_client):
    client = make_client(tone_settings, _parts(ToneRefiner(steps=40, step_s=0.05)))
    voice_id = _add(client, tier=None)
    voice = _wait(client, voice_id, lambda v: v["status"] == "ready")
    assert voice["tier"] == "instant" and voice["refining"] is None
    assert client.post(f"/v1/voices/{voice_id}/edit", data={"tier": "deep"}).status_code == 200
    _wait(client, voice_id, _running)
    again = client.post(f"/v1/voices/{voice_id}/edit", data={"tier": "deep"})
    assert again.status_code == 422 and "already being refined" in again.json()["detail"]["message"]
    voice = _wait(client, voice_id, _ended)
    assert voice["tier"] == "deep"
    deeper = client.post(f"/v1/voices/{voice_id}/edit", data={"tier": "deep"})
    assert deeper.status_code == 422 and "add samples" in deeper.json()["detail"]["message"]
    unknown = client.post(f"/v1/voices/{voice_id}/edit", data={"tier": "ultra"})
    assert unknown.status_code == 422 and "tone/deep" in unknown.json()["detail"]["message"]
    stock = client.post("/v1/voices/tiny_tone/edit", data={"tier": "deep"})
    assert stock.status_code == 422 and "only cloned voices" in stock.json()["detail"]["message"]


def test_a_tier_that_is_not_installed_is_refused_with_what_is(tone_settings, make_client):
    client = make_client(tone_settings, _parts(None))
    response = client.post(
        "/v1/voices/add", data={"name": "X", "tier": "deep"}, files=[("files", ("me.flac", CLIP.read_bytes()))]
    )
    assert response.status_code == 422 and "installed: tone/instant" in response.json()["detail"]["message"]
    assert all(v["name"] != "X" for v in client.get("/v1/voices").json()["voices"])


def test_refinements_do_not_hold_up_instant_enrolments(tone_settings, make_client):
    settings = tone_settings.model_copy(update={"enrolment_workers": 1, "deep_workers": 1})
    client = make_client(settings, _parts(ToneRefiner(steps=600, step_s=0.05)))
    first = _add(client)
    _wait(client, first, _running)
    second = _add(client)  # its instant clone runs while the first voice's refinement does
    voice = _wait(client, second, lambda v: v["status"] == "ready", timeout=10)
    assert voice["tier"] == "instant" and voice["refining"]["status"] == "queued"  # behind the first refinement
    assert client.delete(f"/v1/voices/{first}").status_code == 200
    _wait(client, second, _running)
