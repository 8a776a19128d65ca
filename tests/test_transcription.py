"""OpenAI-compatible transcription: real Whisper on a real clip in every format, streamed, and clear errors."""

from __future__ import annotations

import json
import re

import pytest
from conftest import SHARED_DATA, wer

CLIP = SHARED_DATA / "103-1240-0000.flac"
# What the clip says (LibriSpeech 103-1240-0000, its first two sentences, about 10 s).
OPENING = "chapter one missus rachel lynde is surprised missus rachel lynde lived just where the avonlea main road dipped down into a little hollow"


def _post(client, data: dict, body: bytes | None = None):
    return client.post(
        "/v1/audio/transcriptions",
        files={"file": ("clip.flac", body if body is not None else CLIP.read_bytes())},
        data=data,
    )


@pytest.mark.slow
def test_json_verbose_words_and_srt_from_real_speech(client):
    plain = _post(client, {"model": "tiny.en"})
    assert plain.status_code == 200, plain.text
    text = plain.json()["text"]
    assert wer(OPENING, text[: len(text) * 2 // 3]) < 0.35  # names (Lynde, Avonlea) are Whisper's to misspell

    verbose = _post(
        client,
        {"model": "tiny.en", "response_format": "verbose_json", "timestamp_granularities[]": ["word", "segment"]},
    )
    body = verbose.json()
    assert body["language"] == "en" and 13.5 < body["duration"] < 14.5
    starts = [w["start"] for w in body["words"]]
    assert len(body["words"]) > 30 and starts == sorted(starts)
    assert all(0 <= w["start"] <= w["end"] <= body["duration"] + 0.1 for w in body["words"])
    assert body["segments"][0]["start"] < 0.5 and body["segments"][-1]["end"] > 12
    rachel = next(w for w in body["words"] if "Rachel" in w["word"])
    assert 1.0 < rachel["start"] < 3.0  # "Chapter one, Mrs." comes first

    srt = _post(client, {"model": "tiny.en", "response_format": "srt"})
    assert srt.headers["content-type"].startswith("application/x-subrip")
    cues = re.findall(r"^\d+\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)$", srt.text, flags=re.MULTILINE)
    assert len(cues) >= 2 and cues[0][0].startswith("00:00:00")


@pytest.mark.slow
def test_base_model_and_streamed_events(client):
    response = _post(client, {"model": "base", "response_format": "text", "language": "en"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "Rachel" in response.text

    streamed = _post(client, {"model": "tiny.en", "stream": "true"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1) and len(events) >= 3
    assert events[-1]["type"] == "transcript.text.done"
    assert events[-1]["text"] == "".join(e["delta"] for e in events[:-1])


@pytest.mark.parametrize(
    ("data", "body", "status", "message"),
    [
        ({"model": "large-v3"}, None, 422, "choose one of tiny.en, base"),
        ({"model": "tiny.en", "language": "fr"}, None, 422, "English only"),
        ({"model": "base", "language": "klingon"}, None, 422, "unknown language"),
        ({"model": "whisper-1"}, b"not audio at all", 422, "could not decode"),
        ({"model": "whisper-1", "response_format": "docx"}, None, 422, "response_format"),
        ({"model": "whisper-1", "temperature": "3"}, None, 422, "temperature"),
    ],
)
def test_bad_requests_get_clear_errors(client, data, body, status, message):
    response = _post(client, data, body)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_uploads_over_the_limit_are_refused(settings, make_client):
    client = make_client(settings.model_copy(update={"max_upload_seconds": 2.0}))
    response = _post(client, {"model": "tiny.en"})
    assert response.status_code == 413 and response.json()["error"]["limit"] == "max_upload_seconds"
