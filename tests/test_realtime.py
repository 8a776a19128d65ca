"""/v1/realtime: the OpenAI Realtime event protocol, a voice conversation in a voxclone voice."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import SHARED_DATA, TONE, wer
from realtime_client import Talker, utterance
from starlette.websockets import WebSocketDisconnect

STUB = Path(__file__).parent / "chat_stub.py"


@pytest.fixture(scope="module")
def chat_url():
    """A real OpenAI-compatible chat server process on loopback that streams its reply word by word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(STUB), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{port}/v1"
    process.kill()
    process.wait()
    process.stdout.close()


def _until(ws, kind: str) -> list[dict]:
    events = []
    while True:
        event = ws.receive_json()
        events.append(event)
        if event["type"] == kind:
            return events


def _say_text(ws, text: str) -> None:
    ws.send_json(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        }
    )
    assert ws.receive_json()["type"] == "conversation.item.created"


def test_session_says_it_repeats_what_it_hears_without_a_chat_endpoint(client):
    with client.websocket_connect("/v1/realtime") as ws:
        session = ws.receive_json()
        assert session["type"] == "session.created"
        assert session["session"]["replies"] == "echo" and "voice changer" in session["session"]["note"]
        assert session["session"]["voice"] == TONE and session["session"]["turn_detection"]["type"] == "server_vad"
        _say_text(ws, "Repeat after me.")
        ws.send_json({"type": "response.create"})
        events = _until(ws, "response.done")
        assert events[-1]["response"]["status"] == "completed"
        transcript = next(e for e in events if e["type"] == "response.audio_transcript.done")["transcript"]
        assert transcript == "Repeat after me."


def test_a_reply_streams_from_the_chat_endpoint_in_order(settings, make_client, chat_url):
    from pydantic import SecretStr

    client = make_client(settings.model_copy(update={"llm_url": chat_url, "llm_api_key": SecretStr("sk-chat-secret")}))
    with client.websocket_connect("/v1/realtime") as ws:
        assert ws.receive_json()["session"]["replies"] == "chat"
        ws.send_json({"type": "session.update", "session": {"instructions": "Be brief.", "voice": TONE}})
        assert ws.receive_json()["session"]["instructions"] == "Be brief."
        _say_text(ws, "Hello there")
        ws.send_json({"type": "response.create"})
        events = _until(ws, "response.done")
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
    ]
    assert kinds[-5:] == [
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    deltas = [e for e in events if e["type"] == "response.audio.delta"]
    assert len(deltas) >= 2  # spoken clause by clause
    assert (
        next(e for e in events if e["type"] == "response.audio_transcript.done")["transcript"]
        == "You said: Hello there That is good to hear."
    )
    sent = httpx.get(chat_url.replace("/v1", "/requests")).json()[-1]
    assert sent["authorization"] == "Bearer sk-chat-secret" and sent["body"]["stream"] is True
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_cancel_stops_the_reply_and_bad_events_get_errors(settings, make_client, chat_url):
    client = make_client(settings.model_copy(update={"llm_url": chat_url}))
    with client.websocket_connect("/v1/realtime") as ws:
        ws.receive_json()
        for event, code in [
            ({"type": "no.such.event"}, "invalid_event"),
            ({"type": "session.update", "session": {"voice": "nobody"}}, "voice_not_found"),
            (
                {
                    "type": "session.update",
                    "session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 1}},
                },
                "invalid_request_error",
            ),
            ({"type": "session.update", "session": {"output_audio_format": "g711_ulaw"}}, "invalid_request_error"),
            ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_request_error"),
            ({"type": "response.cancel"}, "invalid_request_error"),
        ]:
            ws.send_json(event)
            error = ws.receive_json()
            assert error["type"] == "error" and error["error"]["code"] == code, (event, error)
        ws.send_text("not json")
        assert ws.receive_json()["error"]["code"] == "invalid_json"
        _say_text(ws, "Tell me a long story about the sea and the ships on it")
        ws.send_json({"type": "response.create"})
        ws.send_json({"type": "response.create"})  # one at a time
        events = _until(ws, "error")
        assert "already in progress" in events[-1]["error"]["message"]
        ws.send_json({"type": "response.cancel"})
        events = _until(ws, "response.done")
        assert events[-1]["response"]["status"] == "cancelled"
        ws.send_json({"type": "input_audio_buffer.clear"})
        assert _until(ws, "input_audio_buffer.cleared")[-1]["type"] == "input_audio_buffer.cleared"


def test_keys_subprotocol_and_sessions_per_key(settings, make_client):
    client = make_client(settings.model_copy(update={"api_keys": ["rt-key-1"], "realtime_sessions_per_key": 1}))
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/v1/realtime") as ws:
        ws.receive_json()  # no key: refused
    protocols = ["realtime", "openai-insecure-api-key.rt-key-1", "openai-beta.realtime-v1"]
    with client.websocket_connect("/v1/realtime", subprotocols=protocols) as ws:
        assert ws.accepted_subprotocol == "realtime"
        assert ws.receive_json()["type"] == "session.created"
        with client.websocket_connect("/v1/realtime", headers={"Authorization": "Bearer rt-key-1"}) as second:
            refused = second.receive_json()
            assert refused["type"] == "error" and refused["error"]["code"] == "limit_exceeded"
    with client.websocket_connect("/v1/realtime", headers={"Authorization": "Bearer rt-key-1"}) as ws:
        assert ws.receive_json()["type"] == "session.created"  # the first one's place was given back


def test_idle_sessions_are_closed(settings, make_client):
    client = make_client(settings.model_copy(update={"realtime_idle_timeout_s": 0.5}))
    with client.websocket_connect("/v1/realtime") as ws:
        ws.receive_json()
        assert ws.receive_json()["error"]["code"] == "idle_timeout"
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()


@pytest.mark.slow
def test_a_spoken_turn_is_heard_answered_in_the_voice_and_interrupted(settings, make_live_server, chat_url, transcribe):
    """A real recording in 20 ms frames, server VAD, Whisper, the chat stub, Kokoro; then a barge-in."""
    server = make_live_server(settings.model_copy(update={"llm_url": chat_url}))
    speech = utterance(
        SHARED_DATA / "1088-129236-0000.flac"
    )  # "Every promise of the soul has innumerable fulfilments."
    talker = Talker(server.url.replace("http", "ws") + "/v1/realtime?voice=jm_kumo")
    try:
        talker.send(
            {
                "type": "session.update",
                "session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
            }
        )
        talker.wait_for("session.updated")
        talker.say(speech)
        _, _, heard = talker.wait_for("conversation.item.input_audio_transcription.completed", timeout=60)
        assert wer("every promise of the soul has innumerable fulfilments", heard["transcript"]) < 0.3
        index, _, done = talker.wait_for("response.done", timeout=90)
        assert done["response"]["status"] == "completed"
        order = talker.types()
        expected = [
            "session.created",
            "session.updated",
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.created",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
        ]
        assert [k for k in order if k in expected][: len(expected)] == expected
        reply = talker.audio(done["response"]["id"])
        assert wer(f"You said: {heard['transcript']} That is good to hear.", transcribe(reply, 24_000)) < 0.3

        # Barge-in: speak again while the next reply plays; its audio stops and it is cut where it was heard.
        talker.ask("Tell me everything about the lighthouse, the keeper, his notebook and the ships he saw")
        first, _, delta = talker.wait_for("response.audio.delta", since=index + 1, timeout=60)
        began = len(talker.speech_began)
        talker.say(speech)
        started, started_at, _ = talker.wait_for("input_audio_buffer.speech_started", since=first)
        assert started_at - talker.speech_began[began] < 0.5
        _, _, cancelled = talker.wait_for("response.done", since=first)
        assert cancelled["response"]["status"] == "cancelled"
        late = [
            e
            for _, e in talker.events[started:]
            if e["type"] == "response.audio.delta" and e["response_id"] == delta["response_id"]
        ]
        assert late == []  # nothing of the interrupted reply after speech_started
        kept = cancelled["response"]["output"][0]["content"][0]["transcript"]
        assert len(kept) < len(
            "You said: Tell me everything about the lighthouse, the keeper, his notebook and the ships he saw That is good to hear."
        )
        assert cancelled["response"]["heard_seconds"] <= cancelled["response"]["audio_seconds"]
        assert np.abs(talker.audio(delta["response_id"])).max() > 0.05
    finally:
        talker.close()
