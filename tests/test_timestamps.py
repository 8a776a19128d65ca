"""Word and character timings: ElevenLabs' with-timestamps routes, the WebSocket replies' alignment,
and the multi-context WebSocket pipecat uses."""

from __future__ import annotations

import base64
import itertools
import json

import numpy as np
import pytest
from conftest import TONE, decode_audio, wer

from voxclone.asr import TranscribeOptions

TEXT = "Hello there, my friend. It is 3:30 pm now!"


def _pcm_seconds(body: bytes, rate: int = 24_000) -> float:
    return len(body) / 2 / rate


def _check_alignment(alignment: dict, text: str, seconds: float) -> None:
    chars = alignment["characters"]
    starts, ends = alignment["character_start_times_seconds"], alignment["character_end_times_seconds"]
    assert "".join(chars) == text
    assert len(starts) == len(ends) == len(chars)
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(starts)), "start times go back"
    assert all(s <= e + 1e-9 for s, e in zip(starts, ends, strict=True))
    assert starts[0] >= 0 and abs(ends[-1] - seconds) < 0.06, "the characters cover the audio"


def test_with_timestamps_aligns_every_character_of_the_text_and_of_what_was_spoken(client):
    response = client.post(f"/v1/text-to-speech/{TONE}/with-timestamps?output_format=pcm_24000", json={"text": TEXT})
    assert response.status_code == 200, response.text
    body = response.json()
    seconds = _pcm_seconds(base64.b64decode(body["audio_base64"]))
    _check_alignment(body["alignment"], TEXT, seconds)
    spoken = "".join(body["normalized_alignment"]["characters"])
    assert "PM" in spoken and "3:30" not in spoken  # as read aloud ("3 30 PM")
    _check_alignment(body["normalized_alignment"], spoken, seconds)
    # The tone engine's timings are exact: "friend" starts where its first tone does.
    chars, starts = body["alignment"]["characters"], body["alignment"]["character_start_times_seconds"]
    first_f = "".join(chars).index("friend")
    audio = np.frombuffer(base64.b64decode(body["audio_base64"]), "<i2").astype(np.float32)
    onset = starts[first_f]
    before = np.abs(audio[int((onset - 0.03) * 24_000) : int((onset - 0.005) * 24_000)]).max()
    after = np.abs(audio[int((onset + 0.005) * 24_000) : int((onset + 0.03) * 24_000)]).max()
    # A tone just after, and next to nothing just before (the watermark's 16 ms frames spread a trace of
    # the tone, under 1/10 of it, into the few milliseconds ahead of it).
    assert after > 3000 and before < after / 10


def test_streamed_with_timestamps_is_one_json_object_per_piece_on_one_clock(client):
    response = client.post(
        f"/v1/text-to-speech/{TONE}/stream/with-timestamps?output_format=pcm_24000", json={"text": TEXT}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    parts = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert len(parts) >= 2
    total, text, previous_end = 0.0, "", 0.0
    for part in parts:
        seconds = _pcm_seconds(base64.b64decode(part["audio_base64"]))
        starts = part["alignment"]["character_start_times_seconds"]
        assert (
            starts[0] >= previous_end - 1e-6
            and abs(part["alignment"]["character_end_times_seconds"][-1] - (total + seconds)) < 0.06
        )
        previous_end = part["alignment"]["character_end_times_seconds"][-1]
        total += seconds
        text += "".join(part["alignment"]["characters"])
    assert text == TEXT


def test_stream_input_replies_carry_alignment_in_milliseconds(client):
    with client.websocket_connect(f"/v1/text-to-speech/{TONE}/stream-input?output_format=pcm_24000") as ws:
        ws.send_json({"text": " "})
        ws.send_json({"text": "Good morning, everyone. "})
        ws.send_json({"text": ""})
        messages = []
        while not (message := ws.receive_json()).get("isFinal"):
            messages.append(message)
    aligned = [m for m in messages if m.get("alignment")]
    assert aligned
    for message in aligned:
        alignment = message["alignment"]
        assert set(alignment) == {"chars", "charStartTimesMs", "charDurationsMs"}
        end = alignment["charStartTimesMs"][-1] + alignment["charDurationsMs"][-1]
        assert abs(end - _pcm_seconds(base64.b64decode(message["audio"])) * 1000) < 60
    assert "".join(c for m in aligned for c in m["alignment"]["chars"]).replace(" ", "") == "Goodmorning,everyone."


def test_multi_stream_input_keeps_two_interleaved_contexts_apart(client):
    url = f"/v1/text-to-speech/{TONE}/multi-stream-input?output_format=pcm_24000"
    with client.websocket_connect(url) as ws:
        ws.send_json({"text": " ", "context_id": "a", "voice_settings": {"speed": 1.0}})
        ws.send_json({"text": " ", "context_id": "b"})
        ws.send_json({"text": "Apples and ", "context_id": "a"})
        ws.send_json({"text": "Bananas, ", "context_id": "b"})
        ws.send_json({"text": "apricots.", "context_id": "a"})
        ws.send_json({"text": "blueberries.", "context_id": "b"})
        ws.send_json({"text": ""})  # a keepalive, not the end
        ws.send_json({"context_id": "a", "close_context": True})
        ws.send_json({"context_id": "b", "flush": True})
        ws.send_json({"context_id": "b", "close_context": True})
        finals, spoken = set(), {"a": "", "b": ""}
        audio = {"a": b"", "b": b""}
        while finals != {"a", "b"}:
            message = ws.receive_json()
            assert "error" not in message, message
            if message.get("isFinal"):
                finals.add(message["contextId"])
                continue
            audio[message["contextId"]] += base64.b64decode(message["audio"])
            spoken[message["contextId"]] += "".join(message["alignment"]["chars"])
        ws.send_json({"close_socket": True})
    assert spoken["a"].replace(" ", "") == "Applesandapricots."
    assert spoken["b"].replace(" ", "") == "Bananas,blueberries."
    assert _pcm_seconds(audio["a"]) > 1.0 and _pcm_seconds(audio["b"]) > 1.0


def test_multi_stream_input_limits_contexts_and_refuses_bad_messages(client):
    with client.websocket_connect(f"/v1/text-to-speech/{TONE}/multi-stream-input") as ws:
        for i in range(5):
            ws.send_json({"text": " ", "context_id": f"c{i}"})
        ws.send_json({"text": " ", "context_id": "one-too-many"})
        assert "at most 5 contexts" in ws.receive_json()["error"]
    with client.websocket_connect(f"/v1/text-to-speech/{TONE}/multi-stream-input") as ws:
        ws.send_text("[1, 2]")
        assert "bad message" in ws.receive_json()["error"]


@pytest.mark.slow
def test_kokoro_word_times_match_whisper_and_cover_the_audio(client, listeners):
    text = "The quick brown fox jumps over the lazy dog. Then it runs far away into the quiet forest."
    body = client.post("/v1/text-to-speech/jm_kumo/with-timestamps?output_format=pcm_24000", json={"text": text}).json()
    pcm = base64.b64decode(body["audio_base64"])
    seconds = _pcm_seconds(pcm)
    _check_alignment(body["alignment"], text, seconds)
    audio, rate = decode_audio(pcm, "pcm", 24_000)
    heard = listeners.transcriber.transcript(audio, rate, TranscribeOptions(words=True, vad=False))
    assert wer(text, heard.text) < 0.15
    chars, starts = "".join(body["alignment"]["characters"]), body["alignment"]["character_start_times_seconds"]
    ours, cursor = [], 0
    for word in text.replace(".", "").split():
        cursor = chars.index(word, cursor)
        ours.append((word.lower(), starts[cursor]))
        cursor += len(word)
    theirs = [(w.word.strip(".,").lower(), w.start) for w in heard.words]
    differences = [abs(a - b) for (wa, a), (wb, b) in zip(ours, theirs, strict=False) if wa == wb]
    assert len(differences) >= len(ours) * 0.8
    assert float(np.median(differences)) < 0.12
