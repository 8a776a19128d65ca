"""The audio cache: hits, misses, bypass, LRU eviction, restarts, invalidation, corruption."""

from __future__ import annotations

from conftest import TONE, metric
from make_tone_model import write as write_tone_model

from voxclone.cache import AudioCache

_metric = metric


def test_second_identical_request_is_a_cache_hit_with_identical_bytes(client):
    first = client.get(f"/speak_as/{TONE}", params={"prompt": "Cache me if you can."})
    misses = _metric(client, "voxclone_cache_misses")
    second = client.get(f"/speak_as/{TONE}", params={"prompt": "Cache me if you can."})
    assert first.content == second.content
    assert _metric(client, "voxclone_cache_hits") == 1
    assert _metric(client, "voxclone_cache_misses") == misses


def test_typed_parameters_share_one_entry(client):
    client.get(f"/speak_as/{TONE}", params={"prompt": "Typed.", "speed": "1"})
    client.get(f"/speak_as/{TONE}", params={"prompt": "Typed.", "speed": "1.0"})
    assert _metric(client, "voxclone_cache_hits") == 1


def test_different_format_speed_or_voice_is_a_miss(client, tone_model):
    client.get(f"/speak_as/{TONE}", params={"prompt": "Vary me."})
    client.get(f"/speak_as/{TONE}", params={"prompt": "Vary me.", "speed": 1.5})
    client.app.state.runtime.library.create(
        name="other", engine="tone", params={"model": str(tone_model)}, category="cloned"
    )
    client.get("/speak_as/other", params={"prompt": "Vary me."})
    client.post("/v1/audio/speech", json={"input": "Vary me.", "voice": TONE, "response_format": "flac"})
    assert _metric(client, "voxclone_cache_hits") == 0
    assert _metric(client, "voxclone_cache_misses") == 4


def test_bypass_cache_really_synthesises_again(client):
    client.get(f"/speak_as/{TONE}", params={"prompt": "Fresh, please."})
    before = _metric(client, "voxclone_synthesis_seconds")
    response = client.get(f"/speak_as/{TONE}", params={"prompt": "Fresh, please.", "bypass_cache": "true"})
    assert response.status_code == 200
    assert _metric(client, "voxclone_cache_hits") == 0
    assert "voxclone_synthesis_seconds_total" in client.get("/metrics").text
    after = sum(
        float(line.split()[-1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("voxclone_synthesis_seconds_total")
    )
    assert after > before


def test_cache_survives_a_restart(settings, make_client):
    first = make_client(settings)
    body = first.get(f"/speak_as/{TONE}", params={"prompt": "Remember me."}).content
    second = make_client(settings)  # a new app over the same data directory
    again = second.get(f"/speak_as/{TONE}", params={"prompt": "Remember me."})
    assert again.content == body
    assert _metric(second, "voxclone_cache_hits") == 1


def test_cache_is_bounded_and_evicts_least_recently_used(tmp_path):
    cache = AudioCache(tmp_path / "cache", size_limit=1_000_000)
    blobs = {f"k{i}": bytes([i]) * 40_000 for i in range(60)}  # 2.4 MB offered to a 1 MB cache
    for key, blob in blobs.items():
        cache.put(key, blob, voice_id="v")
        cache.get("k0")  # keep k0 recently used
    assert cache.volume <= 1_000_000
    assert cache.get("k0") == blobs["k0"]
    assert cache.get("k1") is None  # old, untouched entries went first
    assert cache.get("k59") == blobs["k59"]
    assert 10 < len(cache) < 30


def test_corrupt_entry_is_detected_and_regenerated(settings, make_client):
    client = make_client(settings)
    good = client.get(f"/speak_as/{TONE}", params={"prompt": "Integrity matters."}).content
    cache_files = [p for p in settings.cache_dir.rglob("*.val")]
    assert cache_files, "audio this large is stored as a file by diskcache"
    for path in cache_files:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    again = client.get(f"/speak_as/{TONE}", params={"prompt": "Integrity matters."})
    assert again.status_code == 200
    assert again.content == good  # regenerated, not the corrupted bytes
    assert _metric(client, "voxclone_cache_hits") == 0


def test_deleted_voice_never_serves_cached_audio(tmp_path, settings, make_client):
    pack = write_tone_model(tmp_path / "mine.tone.npz")
    settings = settings.model_copy(update={"extra_voice_paths": [pack]})
    client = make_client(settings)
    assert client.get("/speak_as/mine_tone", params={"prompt": "Soon gone."}).status_code == 200
    assert client.delete("/v1/voices/mine_tone").status_code == 200
    assert client.get("/speak_as/mine_tone", params={"prompt": "Soon gone."}).status_code == 404


def test_changed_voice_is_not_served_from_the_old_cache(tmp_path, settings, make_client):
    pack = write_tone_model(tmp_path / "mine.tone.npz")
    settings = settings.model_copy(update={"extra_voice_paths": [pack]})
    client = make_client(settings)
    before = client.get("/speak_as/mine_tone", params={"prompt": "Which voice am I?"}).content
    write_tone_model(pack, base_hz=330.0)  # the user re-made the voice file
    client.app.state.runtime.library.update("mine_tone", bump_version=True)
    after = client.get("/speak_as/mine_tone", params={"prompt": "Which voice am I?"}).content
    assert after != before
    assert _metric(client, "voxclone_cache_hits") == 0
