"""ElevenLabs' WebSocket input streaming: text arrives in pieces (as an LLM writes it), audio goes back
as soon as a speakable clause is complete.

Protocol (as ElevenLabs' clients speak it): the first message may carry `voice_settings` (and
`xi_api_key`); each `{"text": "..."}` adds text; `"flush": true` forces out what is buffered;
`{"text": ""}` ends the input. The server answers `{"audio": base64, "isFinal": null, ...}` messages
and a last `{"isFinal": true}`, then closes.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from ..audio import Encoder, parse_elevenlabs_format
from ..errors import VoxcloneError
from ..synthesis import MAX_SPEED, MIN_SPEED, Speaker, SpeechRequest
from ..workers import WorkerPool

router = APIRouter(tags=["speech"])

# Speak up to the last clause or sentence boundary once this much text is waiting.
_MIN_CLAUSE_CHARS = 12
_BOUNDARY = re.compile(r"[.!?…;:,—](?=\s)")


def take_speakable(buffer: str, *, flush: bool) -> tuple[str, str]:
    """Split the buffer into (text to speak now, text to keep waiting for more)."""
    if flush:
        return buffer.strip(), ""
    ends = [m.end() for m in _BOUNDARY.finditer(buffer)]
    if not ends or ends[-1] < _MIN_CLAUSE_CHARS:
        return "", buffer
    return buffer[: ends[-1]].strip(), buffer[ends[-1] :]


class _Session:
    """One WebSocket conversation: its voice, speed, encoder and text buffer."""

    def __init__(self, socket: WebSocket, speaker: Speaker, workers: WorkerPool, voice: str, output_format: str) -> None:
        self.socket = socket
        self.speaker = speaker
        self.workers = workers
        self.voice = voice
        self.format = parse_elevenlabs_format(output_format)
        self.speed: float | None = None  # the voice's stored speed until the client sends one
        self.buffer = ""
        self.encoder: Encoder | None = None

    def configure(self, message: dict[str, Any]) -> None:
        settings = message.get("voice_settings") or {}
        speed = settings.get("speed") if isinstance(settings, dict) else None
        if speed is not None:
            if not isinstance(speed, int | float) or not MIN_SPEED <= speed <= MAX_SPEED:
                raise ValueError(f"voice_settings.speed must be a number between {MIN_SPEED} and {MAX_SPEED}")
            self.speed = float(speed)

    async def speak(self, text: str) -> None:
        if not text:
            return
        plan = self.speaker.plan(SpeechRequest(text=text, voice=self.voice, speed=self.speed, format=self.format), streamed=True)
        if self.encoder is None:
            self.encoder = Encoder(self.format, plan.source_rate)
            await self._send_audio(self.encoder.header())
        encoder = self.encoder
        for index in range(len(plan.pieces)):
            data = await self.workers.run(lambda i=index: encoder.encode(self.speaker.piece_audio(plan, i)))
            await self._send_audio(data)

    async def _send_audio(self, data: bytes) -> None:
        if data:
            await self.socket.send_json({"audio": base64.b64encode(data).decode(), "isFinal": None, "normalizedAlignment": None, "alignment": None})

    async def finish(self) -> None:
        if self.encoder is not None:
            await self._send_audio(self.encoder.finish())
        await self.socket.send_json({"isFinal": True})


async def _error(socket: WebSocket, message: str, code: int = 1008) -> None:
    await socket.send_json({"error": message, "message": message})
    await socket.close(code=code, reason=message[:120])


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(socket: WebSocket, voice_id: str) -> None:
    speaker: Speaker = socket.app.state.speaker
    workers: WorkerPool = socket.app.state.workers
    await socket.accept()
    try:
        session = _Session(socket, speaker, workers, voice_id, socket.query_params.get("output_format", "mp3_44100_128"))
        speaker.library.get(voice_id).require_ready()
        while True:
            message = json.loads(await socket.receive_text())
            if not isinstance(message, dict) or not isinstance(message.get("text", ""), str):
                raise ValueError('each message is a JSON object with a string "text"')
            session.configure(message)
            text = message.get("text", "")
            if text == "":  # end of input
                await session.speak(session.buffer.strip())
                await session.finish()
                await socket.close()
                return
            session.buffer += text
            now, session.buffer = take_speakable(session.buffer, flush=bool(message.get("flush")))
            await session.speak(now)
    except WebSocketDisconnect:
        return  # the client left: nothing more to synthesise
    except VoxcloneError as e:
        await _error(socket, str(e))
    except (ValueError, ValidationError) as e:  # json.JSONDecodeError is a ValueError
        await _error(socket, f"bad message: {e}", code=1007)
