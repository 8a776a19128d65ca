"""Voice enrolment through the API: formats, bad input, progress and status, restarts, more samples."""

from __future__ import annotations

import io
import time

import av
import numpy as np
import pytest
import soundfile
from conftest import SHARED_DATA, decode_audio, wer
from tone_cloner import FailingCloner, ToneCloner

from voxclone.cloning import Cloners
from voxclone.cloning.prepare import prepare
from voxclone.runtime import Parts
from voxclone.samples import store

CLIP = SHARED_DATA / "103-1240-0000.flac"  # 14 s of one reader


def _clip(seconds: float | None = None) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(CLIP, dtype="float32")
    return (audio if seconds is None else audio[: int(seconds * rate)]), rate


def encode_as(audio: np.ndarray, rate: int, container: str, codec: str, out_rate: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=out_rate or rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate or rate)
        frame = av.AudioFrame.from_ndarray((audio * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for chunk in resampler.resample(frame):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


FORMATS = {
    "wav": ("wav", "pcm_s16le", None),
    "flac": ("flac", "flac", None),
    "mp3": ("mp3", "libmp3lame", None),
    "ogg": ("ogg", "libopus", 48_000),
    "webm": ("webm", "libopus", 48_000),  # what a browser's MediaRecorder produces
    "m4a": ("ipod", "aac", None),
}


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_every_accepted_format_prepares_to_the_same_speech(extension):
    audio, rate = _clip()
    container, codec, out_rate = FORMATS[extension]
    sample = prepare(encode_as(audio, rate, container, codec, out_rate), f"me.{extension}", max_seconds=600)
    assert 10.0 < sample.speech_seconds < 14.5  # the reader's speech, silences trimmed
    assert abs(20 * np.log10(np.sqrt(np.mean(sample.audio**2)) + 1e-9) + 23) < 6  # levelled near -23 LUFS


def _add(client, name: str, files: list[tuple[str, bytes]], **data) -> object:
    return client.post("/v1/voices/add", data={"name": name, **data}, files=[("files", f) for f in files])


def _folders(settings) -> set[str]:
    return {p.name for p in settings.voices_dir.iterdir()} if settings.voices_dir.exists() else set()


@pytest.mark.parametrize(
    ("make", "status", "needle"),
    [
        (lambda: [("short.flac", encode_as(_clip(2.0)[0], 16_000, "flac", "flac"))], 422, "at least 3 s"),
        (
            lambda: [("silent.wav", encode_as(np.zeros(16_000 * 5, np.float32), 16_000, "wav", "pcm_s16le"))],
            422,
            "silent",
        ),
        (
            lambda: [("loud.wav", encode_as(np.clip(_clip()[0] * 40, -1, 1), 16_000, "wav", "pcm_s16le"))],
            422,
            "clipped",
        ),
        (lambda: [("notes.txt", b"this is not audio at all")], 422, "could not decode"),
        (lambda: [("empty.wav", b"")], 422, "empty"),
        (lambda: [("long.flac", encode_as(np.tile(_clip()[0], 2), 16_000, "flac", "flac"))], 413, "limit"),
    ],
)
def test_bad_recordings_are_refused_with_what_to_fix_and_leave_nothing(settings, make_client, make, status, needle):
    client = make_client(settings.model_copy(update={"max_upload_seconds": 20.0}))
    before_voices, before_folders = len(client.get("/v1/voices").json()["voices"]), _folders(settings)
    response = _add(client, "Broken", make())
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]["message"]
    assert len(client.get("/v1/voices").json()["voices"]) == before_voices
    assert _folders(settings) == before_folders


def test_add_without_files_or_name_is_422(client):
    assert client.post("/v1/voices/add", data={"name": "x"}).status_code == 422
    assert client.post("/v1/voices/add", files=[("files", ("a.flac", CLIP.read_bytes()))]).status_code == 422


def _tone_client(settings, make_client, cloner=None):
    """A real app cloning for the tone engine: the upload path and the jobs are real, the clone is quick."""
    tone = settings.model_copy(update={"clone_engine": "tone"})
    return make_client(tone, Parts(cloners=Cloners([cloner or ToneCloner()])))


def test_every_accepted_format_enrols_through_the_api(settings, make_client):
    audio, rate = _clip()
    uploads = [(f"me.{ext}", encode_as(audio, rate, *FORMATS[ext])) for ext in sorted(FORMATS)]
    client = _tone_client(settings, make_client, FailingCloner())
    response = _add(client, "Every format", uploads, transcripts=[""] * len(uploads))
    assert response.status_code == 200, response.text
    voice_id = response.json()["voice_id"]
    voice, _ = _wait_ready(client, voice_id, timeout=30)
    assert voice["status"] == "failed" and voice["error"] == "stopped by the test"
    samples = voice["samples"]
    assert sorted(s["file_name"] for s in samples) == sorted(name for name, _ in uploads)
    for sample in samples:
        assert 10.0 < sample["duration_s"] < 14.5, sample
        stored = client.get(f"/v1/voices/{voice_id}/samples/{sample['sample_id']}/audio")
        assert stored.status_code == 200 and stored.headers["content-type"] == "audio/wav"
        assert abs(decode_audio(stored.content)[0].size / 24_000 - sample["duration_s"]) < 0.05
    # A bad extra sample is refused and leaves the voice's samples as they were
    bad = client.post(f"/v1/voices/{voice_id}/edit", files=[("files", ("notes.txt", b"not audio"))])
    assert bad.status_code == 422 and "could not decode" in bad.json()["detail"]["message"]
    assert len(client.get(f"/v1/voices/{voice_id}").json()["samples"]) == len(uploads)
    assert client.get(f"/v1/voices/{voice_id}/samples/../../x/audio").status_code == 404
    assert client.delete(f"/v1/voices/{voice_id}").status_code == 200
    assert not (settings.voices_dir / voice_id).exists()


def test_stock_voices_take_no_samples(client):
    stock = next(v for v in client.get("/v1/voices").json()["voices"] if v["category"] != "cloned")
    response = client.post(f"/v1/voices/{stock['voice_id']}/edit", files=[("files", ("me.flac", CLIP.read_bytes()))])
    assert response.status_code == 422 and "only cloned voices" in response.json()["detail"]["message"]


def _wait_ready(client, voice_id: str, timeout: float = 240) -> tuple[dict, list[float]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        voice = client.get(f"/v1/voices/{voice_id}").json()
        seen.append(voice["progress"])
        if voice["status"] != "enrolling":
            return voice, seen
        time.sleep(0.5)
    pytest.fail("enrolment did not finish")


@pytest.mark.slow
def test_kokoro_clone_through_the_api_goes_enrolling_then_ready_and_speaks(settings, make_client, transcribe):
    client = make_client(settings.model_copy(update={"enrolment_time_budget_s": 8.0}))
    response = _add(
        client, "Reader 103", [("me.flac", CLIP.read_bytes())], labels='{"accent": "american"}', description="test"
    )
    assert response.status_code == 200
    voice_id = response.json()["voice_id"]
    first = client.get(f"/v1/voices/{voice_id}").json()
    assert first["status"] == "enrolling" and first["labels"] == {"accent": "american"}
    assert client.get(f"/speak_as/{voice_id}", params={"prompt": "Too early."}).status_code == 409
    voice, progress = _wait_ready(client, voice_id)
    assert voice["status"] == "ready", voice["error"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert set(voice["scores"]) >= {"similarity", "baseline_similarity", "wer"}
    assert voice["samples"][0]["file_name"] == "me.flac"
    sample = client.get(f"/v1/voices/{voice_id}/samples/{voice['samples'][0]['sample_id']}/audio")
    assert sample.status_code == 200 and decode_audio(sample.content)[0].size > 24_000 * 10
    # The clone speaks through every API like a stock voice
    sentence = "Please call Stella and ask her to bring these things with her from the store."
    speech = client.post("/v1/audio/speech", json={"input": sentence, "voice": voice_id, "response_format": "wav"})
    audio, rate = decode_audio(speech.content)
    assert wer(sentence, transcribe(audio, rate)) <= 0.25
    assert (
        client.post(
            f"/v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000", json={"text": "Hello."}
        ).status_code
        == 200
    )
    # Adding a sample re-enrols it
    second = encode_as(_clip()[0][::-1].copy(), 16_000, "wav", "pcm_s16le")
    edit = client.post(
        f"/v1/voices/{voice_id}/edit", data={"name": "Reader 103 v2"}, files=[("files", ("more.wav", second))]
    )
    assert edit.status_code == 200
    voice, _ = _wait_ready(client, voice_id)
    assert voice["name"] == "Reader 103 v2" and voice["status"] == "ready" and len(voice["samples"]) == 2
    assert voice["version"] > first["version"] + 1


def test_a_quick_clone_goes_enrolling_then_ready_and_speaks_at_its_engine_rate(settings, make_client):
    client = _tone_client(settings, make_client)
    response = _add(client, "Reader 103", [("me.flac", CLIP.read_bytes())], labels='{"accent": "american"}')
    assert response.status_code == 200
    voice_id = response.json()["voice_id"]
    voice, _ = _wait_ready(client, voice_id, timeout=60)
    assert voice["status"] == "ready" and voice["engine"] == "tone" and voice["tier"] == "instant", voice
    assert voice["labels"] == {"accent": "american"} and 120 < voice["scores"]["f0_reference"] < 300
    speech = client.get(f"/speak_as/{voice_id}", params={"prompt": "Hello."})
    audio, rate = decode_audio(speech.content)
    assert rate == 16_000 and audio.size > 0.2 * rate


def _interrupted_voice(runtime, *, with_samples: bool) -> str:
    voice = runtime.library.create(name="Interrupted", engine="tone", params={}, category="cloned", status="enrolling")
    if with_samples:
        store(runtime.library.blobs, voice.id, prepare(CLIP.read_bytes(), "me.flac", max_seconds=600))
    return voice.id


def test_a_restart_mid_enrolment_resumes_from_the_stored_samples(settings, make_runtime, make_client):
    settings = settings.model_copy(update={"clone_engine": "tone"})
    voice_id = _interrupted_voice(make_runtime(settings), with_samples=True)  # as a killed server left it
    client = _tone_client(settings, make_client)  # start-up resumes it
    voice, _ = _wait_ready(client, voice_id, timeout=60)
    assert voice["status"] == "ready"


def test_a_restart_with_no_stored_samples_marks_the_voice_failed(settings, make_runtime, make_client):
    voice_id = _interrupted_voice(make_runtime(settings), with_samples=False)
    voice = make_client(settings).get(f"/v1/voices/{voice_id}").json()
    assert voice["status"] == "failed" and "interrupted" in voice["error"]


def test_enrolments_beyond_the_queue_are_refused_with_429(settings, make_client):
    settings = settings.model_copy(update={"enrolment_workers": 1, "enrolment_queue": 0})
    client = _tone_client(settings, make_client, FailingCloner(wait_s=3))
    assert _add(client, "First", [("a.flac", CLIP.read_bytes())]).status_code == 200
    second = _add(client, "Second", [("a.flac", CLIP.read_bytes())])
    assert second.status_code == 429
    assert second.json()["detail"]["limit"] == "enrolment_queue" and second.headers["retry-after"]
    voice = next(v for v in client.get("/v1/voices").json()["voices"] if v["name"] == "First")
    voice, _ = _wait_ready(client, voice["voice_id"], timeout=20)
    assert voice["status"] == "failed" and voice["error"] == "stopped by the test"


def test_deleting_a_voice_stops_its_enrolment(settings, make_client):
    cloner = FailingCloner(wait_s=30)
    client = _tone_client(settings, make_client, cloner)
    voice_id = _add(client, "Doomed", [("a.flac", CLIP.read_bytes())]).json()["voice_id"]
    deadline = time.monotonic() + 10
    while not cloner.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.delete(f"/v1/voices/{voice_id}").status_code == 200
    # the job stops at its next progress report, so the next enrolment starts at once
    assert _add(client, "Next", [("a.flac", CLIP.read_bytes())]).status_code == 200
    deadline = time.monotonic() + 10
    while cloner.started < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cloner.started == 2
    assert not (settings.voices_dir / voice_id).exists()


def test_optional_fields_sent_as_null_are_taken_as_not_given(settings, make_client):
    # ElevenLabs' Python SDK sends every optional form field it was not given as "null".
    client = _tone_client(settings, make_client, FailingCloner())
    added = client.post(
        "/v1/voices/add",
        data={"name": "Nulls", "labels": "null", "description": "null", "remove_background_noise": "null"},
        files=[("files", ("me.flac", CLIP.read_bytes()))],
    )
    assert added.status_code == 200, added.text
    voice_id = added.json()["voice_id"]
    voice = client.get(f"/v1/voices/{voice_id}").json()
    assert (voice["labels"], voice["description"]) == ({}, "")
    client.post(f"/v1/voices/{voice_id}/edit", data={"labels": '{"accent": "british"}', "description": "kept"})
    edit = client.post(f"/v1/voices/{voice_id}/edit", data={"name": "Renamed", "labels": "null", "description": ""})
    assert edit.status_code == 200, edit.text
    voice = client.get(f"/v1/voices/{voice_id}").json()
    assert (voice["name"], voice["labels"], voice["description"]) == ("Renamed", {"accent": "british"}, "kept")
    too_long = client.post(f"/v1/voices/{voice_id}/edit", data={"description": "x" * 1001})
    assert too_long.status_code == 422 and "description" in too_long.json()["detail"]["message"]
    bad_labels = client.post(f"/v1/voices/{voice_id}/edit", data={"labels": "[1, 2]"})
    assert bad_labels.status_code == 422 and "labels must be" in bad_labels.json()["detail"]["message"]
