"""The coqui-tts engines on tiny randomly initialised models (tests/make_coqui_models.py), loaded through
the same code as real weights, speaking through the HTTP API. Their sound is noise: rates, lengths,
streaming order and caching are what is checked here, not quality."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, TONE, decode_audio, metric
from file_server import serving
from make_coqui_models import bark, bark_prompt, openvoice, xtts
from make_tone_model import SECONDS_PER_CHAR

from voxclone.engines import Engines
from voxclone.engines.bark import BarkEngine
from voxclone.engines.xtts import XttsEngine
from voxclone.runtime import Parts

pytestmark = pytest.mark.slow  # torch and coqui-tts (tiny models, but seconds to import and load)

SAMPLE = SHARED_DATA / "103-1240-0000.flac"


@pytest.fixture(scope="session")
def coqui_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coqui")
    openvoice(out)
    bark(out)
    xtts(out)
    return out


@pytest.fixture(scope="session")
def prompt_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A voice prompt in the original project's format, as its Bark fine-tuning wrote them."""
    path = tmp_path_factory.mktemp("prompts") / "owyntest5.npz"
    np.savez(path, **bark_prompt(np.random.default_rng(5)))
    return path


def _bark_client(settings, make_client, engines, folder: Path, **update):
    local = settings.model_copy(update={"torch_threads": 1, "model_paths": {"bark": folder}, **update})
    return make_client(local, Parts(engines=Engines({**engines, "bark": BarkEngine.from_settings(local)})))


def _seconds(response, rate: int = 24_000) -> float:
    audio, got = decode_audio(response.content)
    assert got == rate
    return audio.size / rate


def _enrol(client, name: str, engine: str) -> dict:
    added = client.post(
        "/v1/voices/add", data={"name": name, "engine": engine}, files=[("files", ("ref.flac", SAMPLE.read_bytes()))]
    )
    assert added.status_code == 200, added.text
    deadline = time.monotonic() + 120
    while (voice := client.get(f"/v1/voices/{added.json()['voice_id']}").json())["status"] == "enrolling":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return voice


def test_openvoice_clone_is_the_base_voice_in_the_speakers_tone_colour(settings, make_client, coqui_models):
    local = settings.model_copy(
        update={
            "torch_threads": 1,
            "model_paths": {"openvoice_v2": coqui_models / "openvoice_v2"},
            "openvoice_base_voice": TONE,
        }
    )
    client = make_client(local)
    voice = _enrol(client, "Owyn (OpenVoice)", "openvoice")
    assert voice["status"] == "ready" and voice["engine"] == "tone", voice  # the base voice's engine, plus a filter
    text = "tone colour"
    converted = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": text})
    base = client.get(f"/speak_as/{TONE}", params={"prompt": text})
    assert converted.status_code == 200, converted.text
    audio, rate = decode_audio(converted.content)
    plain, _ = decode_audio(base.content)
    assert rate == 16_000 and audio.size == plain.size  # the converter keeps the base voice's rate and length
    assert abs(audio.size / rate - len(text) * SECONDS_PER_CHAR) < 0.05
    assert not np.allclose(audio, plain, atol=1e-3)  # but not its sound
    hits = metric(client, "voxclone_cache_hits")
    again = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": text})
    assert again.content == converted.content and metric(client, "voxclone_cache_hits") == hits + 1
    streamed = client.post(
        f"/v1/text-to-speech/{voice['voice_id']}/stream?output_format=pcm_16000", json={"text": "First, then second."}
    )
    assert streamed.status_code == 200
    assert decode_audio(streamed.content, "pcm", 16_000)[0].size / 16_000 > len("First then second") * SECONDS_PER_CHAR


def test_openvoice_without_its_weights_says_which_command_fixes_it(settings, make_client, tmp_path):
    local = settings.model_copy(
        update={"torch_threads": 1, "model_paths": {"openvoice_v2": tmp_path / "empty"}, "openvoice_base_voice": TONE}
    )
    voice = _enrol(make_client(local), "No weights", "openvoice")
    assert voice["status"] == "failed" and "voxclone models pull openvoice_v2" in voice["error"]


def test_bark_stock_speakers_speak_at_24k_for_as_long_as_the_text_needs_and_are_cached(
    settings, make_client, engines, coqui_models
):
    client = _bark_client(settings, make_client, engines, coqui_models / "bark")
    listed = {v["voice_id"]: v for v in client.get("/v1/voices").json()["voices"]}
    assert listed["en_speaker_0"]["engine"] == "bark" and "en_speaker_1" in listed and "en_speaker_2" not in listed
    text = "Hello there."
    first = client.get("/speak_as/en_speaker_0", params={"prompt": text})
    assert first.status_code == 200, first.text
    assert 0.3 < _seconds(first) <= 1.0 + len(text) / 10 + 0.05  # capped to what the text plausibly needs
    hits = metric(client, "voxclone_cache_hits")
    again = client.get("/speak_as/en_speaker_0", params={"prompt": text})
    assert again.content == first.content and metric(client, "voxclone_cache_hits") == hits + 1
    assert client.get("/health").json()["engines"]["bark"]["state"] == "ready"


def test_bark_streams_its_pieces_in_order(settings, make_client, engines, coqui_models):
    client = _bark_client(settings, make_client, engines, coqui_models / "bark")
    url = "/v1/text-to-speech/en_speaker_1/stream?output_format=pcm_24000"
    alone = client.post(url, json={"text": "Hello there."})
    both = client.post(url, json={"text": "Hello there. And then the rest."})
    assert alone.status_code == both.status_code == 200
    assert len(both.content) > len(alone.content) and both.content.startswith(alone.content)  # first piece first


def test_an_npz_prompt_becomes_a_voice_by_path_or_upload(settings, make_client, engines, coqui_models, prompt_file):
    client = _bark_client(
        settings,
        make_client,
        engines,
        coqui_models / "bark",
        extra_voice_paths=[*settings.extra_voice_paths, prompt_file],
    )
    by_path = client.get("/v1/voices/owyntest5").json()
    assert by_path["engine"] == "bark" and by_path["category"] == "file"
    assert client.get("/speak_as/owyntest5", params={"prompt": "I am a bunny."}).status_code == 200
    uploaded = client.post(
        "/v1/voices/import", data={"name": "Owyn (Bark)"}, files={"file": ("owyn.npz", prompt_file.read_bytes())}
    )
    assert uploaded.status_code == 200 and uploaded.json()["engine"] == "bark", uploaded.text
    spoken = client.post(
        "/v1/audio/speech", json={"input": "I am a bunny.", "voice": "Owyn (Bark)", "response_format": "wav"}
    )
    assert spoken.status_code == 200 and _seconds(spoken) > 0.3
    broken = client.post(
        "/v1/voices/import", data={"name": "Broken"}, files={"file": ("b.npz", _npz(semantic_prompt=np.array([1.5])))}
    )
    assert broken.status_code == 422 and "semantic_prompt" in broken.json()["detail"]["message"]
    assert client.get("/v1/voices/Broken").status_code == 404


def _npz(**arrays) -> bytes:
    import io

    out = io.BytesIO()
    np.savez(out, **{**bark_prompt(np.random.default_rng(0)), **arrays})
    return out.getvalue()


def test_bark_without_weights_is_503_with_the_pull_command(settings, make_client, engines, prompt_file, tmp_path):
    client = _bark_client(
        settings,
        make_client,
        engines,
        tmp_path / "nothing",
        extra_voice_paths=[*settings.extra_voice_paths, prompt_file],
    )
    health = client.get("/health").json()["engines"]["bark"]
    assert health["state"] == "missing_weights" and health["fix"] == "voxclone models pull bark"
    refused = client.get("/speak_as/owyntest5", params={"prompt": "Hello."})
    assert refused.status_code == 503 and "voxclone models pull bark" in refused.json()["detail"]["message"]


def test_an_idle_model_is_unloaded_after_its_ttl_and_loads_again(settings, make_client, engines, coqui_models):
    client = _bark_client(settings, make_client, engines, coqui_models / "bark", model_idle_ttl_s=1.0)
    assert client.get("/speak_as/en_speaker_0", params={"prompt": "Once."}).status_code == 200
    deadline = time.monotonic() + 20
    while client.get("/health").json()["engines"]["bark"]["state"] != "not_loaded":
        assert time.monotonic() < deadline, "the idle model was never unloaded"
        time.sleep(0.2)
    assert client.get("/speak_as/en_speaker_0", params={"prompt": "Twice."}).status_code == 200


def _xtts_client(settings, make_client, engines, folder: Path, **update):
    local = settings.model_copy(update={"torch_threads": 1, "model_paths": {"xtts_v2": folder}, **update})
    return make_client(local, Parts(engines=Engines({**engines, "xtts": XttsEngine.from_settings(local)})))


def test_xtts_is_off_until_its_non_commercial_licence_is_accepted(settings, make_client, engines, coqui_models):
    client = _xtts_client(settings, make_client, engines, coqui_models / "xtts_v2")
    health = client.get("/health").json()["engines"]["xtts"]
    assert (
        health["state"] == "disabled"
        and "non-commercial" in health["detail"]
        and "VOXCLONE_XTTS_ACCEPT_CPML" in health["fix"]
    )
    voice = _enrol(client, "Not yet", "xtts")
    assert voice["status"] == "failed" and "Coqui Public Model License" in voice["error"]


def test_xtts_clones_zero_shot_and_speaks_each_piece_at_24k(settings, make_client, engines, coqui_models):
    client = _xtts_client(settings, make_client, engines, coqui_models / "xtts_v2", xtts_accept_cpml=True)
    voice = _enrol(client, "Owyn (XTTS)", "xtts")
    assert voice["status"] == "ready" and voice["engine"] == "xtts", voice
    first = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": "Hello there."})
    assert first.status_code == 200, first.text
    assert 0.04 < _seconds(first) < 40 * 1024 / 22_050 + 0.1  # the tiny model's longest answer: 40 codes
    again = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": "Hello there."})
    assert again.content == first.content


def test_allow_downloads_fetches_missing_weights_in_the_background_then_speaks(
    settings, make_client, engines, coqui_models, tmp_path
):
    """A server started with --allow-downloads pulls what an engine lacks (here from a mirror named by a
    manifest file, as Hugging Face would serve it), checks it, and the engine and its stock voices come up."""
    folder = coqui_models / "bark"
    files = {f"/bark/{p.relative_to(folder)}": p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    with serving(files) as mirror:
        entries = [
            {
                "path": path.removeprefix("/bark/"),
                "url": mirror.url + path,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            for path, data in files.items()
        ]
        manifest = tmp_path / "mirror.json"
        manifest.write_text(
            json.dumps({"models": [{"name": "bark", "engine": "bark", "licence": "MIT", "files": entries}]})
        )
        local = settings.model_copy(
            update={
                "torch_threads": 1,
                "model_dir": tmp_path / "weights",
                "model_manifest": manifest,
                "allow_downloads": True,
            }
        )
        client = make_client(local, Parts(engines=Engines({**engines, "bark": BarkEngine.from_settings(local)})))
        deadline = time.monotonic() + 60
        while client.get("/health").json()["engines"]["bark"]["state"] == "missing_weights":
            assert time.monotonic() < deadline, "the weights were never downloaded"
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while client.get("/v1/voices/en_speaker_0").status_code != 200:  # stock voices that came with the weights
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert (tmp_path / "weights" / "bark" / "text_2.pt").read_bytes() == (folder / "text_2.pt").read_bytes()
    assert client.get("/speak_as/en_speaker_0", params={"prompt": "Downloaded."}).status_code == 200


def test_engine_bark_clones_a_voice_prompt_from_recordings(settings, make_client, engines, coqui_models):
    client = _bark_client(settings, make_client, engines, coqui_models / "bark")
    voice = _enrol(client, "Owyn (Bark clone)", "bark")
    assert voice["status"] == "ready" and voice["engine"] == "bark", voice
    spoken = client.get(f"/speak_as/{voice['voice_id']}", params={"prompt": "I am a bunny."})
    assert spoken.status_code == 200 and 0.3 < _seconds(spoken) <= 1.0 + len("I am a bunny.") / 10 + 0.05
