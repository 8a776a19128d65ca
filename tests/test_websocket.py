"""ElevenLabs' WebSocket input streaming: partial text, flush, end of input, errors, clean close."""

from __future__ import annotations

import base64

import pytest
from conftest import TONE
from starlette.websockets import WebSocketDisconnect

from voxclone.text import take_speakable


def _audio_until(ws, *, final: bool) -> tuple[bytes, bool]:
    audio = b""
    while True:
        message = ws.receive_json()
        if message.get("audio"):
            audio += base64.b64decode(message["audio"])
            if not final:
                return audio, False
        if message.get("isFinal"):
            return audio, True


def test_partial_text_waits_for_a_clause_and_flush_forces_it_out(client):
    with client.websocket_connect(f"/v1/text-to-speech/{TONE}/stream-input?output_format=pcm_24000") as ws:
        ws.send_json({"text": " ", "voice_settings": {"stability": 0.5, "speed": 1.0}})
        ws.send_json({"text": "Hello there, my "})
        first, _ = _audio_until(ws, final=False)  # "Hello there," is a complete clause
        assert len(first) / 2 / 24_000 > 0.4
        ws.send_json({"text": "friend", "flush": True})
        flushed, _ = _audio_until(ws, final=False)
        assert len(flushed) > 0
        ws.send_json({"text": ""})
        _, final = _audio_until(ws, final=True)
        assert final
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()  # the server closed cleanly after isFinal


def test_unknown_voice_gets_an_error_message_and_a_close(client):
    with client.websocket_connect("/v1/text-to-speech/nobody/stream-input") as ws:
        message = ws.receive_json()
        assert "no voice named" in message["error"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008


def test_malformed_message_is_refused_with_a_reason(client):
    with client.websocket_connect(f"/v1/text-to-speech/{TONE}/stream-input") as ws:
        ws.send_text("{not json")
        assert "bad message" in ws.receive_json()["error"]


@pytest.mark.parametrize(
    ("buffer", "flush", "now", "later"),
    [
        ("Hello there, my", False, "Hello there,", " my"),
        ("Hi", False, "", "Hi"),
        ("Hi", True, "Hi", ""),
        ("One sentence. Two, three", False, "One sentence. Two,", " three"),
    ],
)
def test_take_speakable(buffer, flush, now, later):
    assert take_speakable(buffer, flush=flush) == (now, later)
