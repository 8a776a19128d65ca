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
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from ..alignment import CharTimes
from ..audio import parse_elevenlabs_format
from ..errors import VoxcloneError
from ..speech import MAX_SPEED, MIN_SPEED, SpeechService, SpeechSession
from ..text import take_speakable
from ..timestamps import TimedSpeech

router = APIRouter(tags=["speech"])


async def send_audio(socket: WebSocket, data: bytes, times: CharTimes | None = None) -> None:
    if data:
        aligned = times.as_websocket() if times is not None else None
        await socket.send_json(
            {
                "audio": base64.b64encode(data).decode(),
                "isFinal": None,
                "normalizedAlignment": aligned,
                "alignment": aligned,
            }
        )


def voice_speed(message: dict[str, Any], current: float | None) -> float | None:
    settings = message.get("voice_settings") or {}
    speed = settings.get("speed") if isinstance(settings, dict) else None
    if speed is None:
        return current
    if not isinstance(speed, int | float) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"voice_settings.speed must be a number between {MIN_SPEED} and {MAX_SPEED}")
    return float(speed)


async def send_error(socket: WebSocket, message: str, code: int = 1008) -> None:
    await socket.send_json({"error": message, "message": message})
    await socket.close(code=code, reason=message[:120])


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(socket: WebSocket, voice_id: str) -> None:
    speech: SpeechService = socket.app.state.runtime.speech
    await socket.accept()
    session: SpeechSession | None = None
    buffer = ""
    try:
        output = parse_elevenlabs_format(socket.query_params.get("output_format", "mp3_44100_128"))
        await speech.find(voice_id)  # an unknown or unready voice is refused before any text is awaited
        while True:
            message = _message(await socket.receive_text())
            speed = voice_speed(message, session.speed if session else None)  # None: the voice's stored speed
            if session is None:
                session = await speech.session(voice_id, output, speed)
            session.speed = speed
            text = message.get("text", "")
            if text == "":  # end of input
                await _speak(socket, session, buffer.strip())
                await send_audio(socket, await session.finish())
                await socket.send_json({"isFinal": True})
                await socket.close()
                return
            buffer += text
            now, buffer = take_speakable(buffer, flush=bool(message.get("flush")))
            await _speak(socket, session, now)
    except WebSocketDisconnect:
        return  # the client left: nothing more to synthesise
    except VoxcloneError as e:
        await send_error(socket, str(e))
    except (ValueError, ValidationError) as e:  # json.JSONDecodeError is a ValueError
        await send_error(socket, f"bad message: {e}", code=1007)
    finally:
        if session is not None:
            session.close()


def _message(raw: str) -> dict[str, Any]:
    message = json.loads(raw)
    if not isinstance(message, dict) or not isinstance(message.get("text", ""), str):
        raise ValueError('each message is a JSON object with a string "text"')
    return message


async def _speak(socket: WebSocket, session: SpeechSession, text: str) -> None:
    timed: TimedSpeech = socket.app.state.runtime.timed
    async for data, chunk in session.speak(text):
        await send_audio(socket, data, await timed.chunk_times(chunk, session.voice))
