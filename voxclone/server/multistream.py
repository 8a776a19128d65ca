"""ElevenLabs' multi-context WebSocket (`multi-stream-input`, which pipecat uses): several independent
streams of text on one socket, each with its own `context_id`, spoken side by side.

Client messages: `{"text", "context_id", "voice_settings"?}` adds text to a context (opening it);
`{"context_id", "flush": true}` speaks what it holds; `{"context_id", "close_context": true}` speaks the
rest, then ends it with `{"isFinal": true, "contextId"}`; `{"close_socket": true}` ends every context,
then the socket. `{"text": ""}` keeps a context alive. Replies: `{"audio", "alignment",
"normalizedAlignment", "contextId"}`, alignment in milliseconds from the start of that audio chunk.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from ..audio import OutputFormat, parse_elevenlabs_format
from ..errors import VoxcloneError
from ..speech import SpeechService, SpeechSession
from ..text import take_speakable
from ..timestamps import TimedSpeech
from .websocket import send_error, voice_speed

router = APIRouter(tags=["speech"])
MAX_CONTEXTS = 5  # ElevenLabs' own limit per socket
DEFAULT_CONTEXT = "default"
_INACTIVITY_S = (20, 1, 180)  # default, least, most (ElevenLabs' `inactivity_timeout` query parameter)


class _Socket:
    """One socket's sending side: messages from every context's task go out one at a time."""

    def __init__(self, socket: WebSocket, timed: TimedSpeech) -> None:
        self.socket = socket
        self.timed = timed
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self.socket.application_state == WebSocketState.CONNECTED:
                await self.socket.send_json(message)


class _Context:
    """One context: its own speech session and text buffer, spoken in order by its own task."""

    def __init__(self, context_id: str, session: SpeechSession, out: _Socket) -> None:
        self.id = context_id
        self.session = session
        self.out = out
        self.buffer = ""
        self._jobs: asyncio.Queue[str | None] = asyncio.Queue()  # text to speak; None: close
        self.task = asyncio.create_task(self._run())

    def add(self, text: str, *, flush: bool) -> None:
        self.buffer += text
        now, self.buffer = take_speakable(self.buffer, flush=flush)
        if now:
            self._jobs.put_nowait(now)

    def close(self) -> None:
        """Speak what is left, then end with isFinal."""
        if self.buffer.strip():
            self._jobs.put_nowait(self.buffer.strip())
        self.buffer = ""
        self._jobs.put_nowait(None)

    async def _run(self) -> None:
        try:
            while (text := await self._jobs.get()) is not None:
                async for data, chunk in self.session.speak(text):
                    await self._audio(data, await self.out.timed.chunk_times(chunk, self.session.voice))
            await self._audio(await self.session.finish(), None)
            await self.out.send({"isFinal": True, "contextId": self.id})
        except VoxcloneError as e:
            await self.out.send({"error": str(e), "message": str(e), "contextId": self.id})
        finally:
            self.session.close()

    async def _audio(self, data: bytes, times: Any) -> None:
        if data:
            aligned = times.as_websocket() if times is not None else None
            await self.out.send(
                {
                    "audio": base64.b64encode(data).decode(),
                    "alignment": aligned,
                    "normalizedAlignment": aligned,
                    "contextId": self.id,
                }
            )


def _inactivity(raw: str | None) -> float:
    default, least, most = _INACTIVITY_S
    try:
        return float(min(most, max(least, int(raw)))) if raw else float(default)
    except ValueError as e:
        raise ValueError(f"inactivity_timeout must be a whole number of seconds ({least}-{most})") from e


def _message(raw: str) -> dict[str, Any]:
    message = json.loads(raw)
    if not isinstance(message, dict) or not isinstance(message.get("text", ""), str):
        raise ValueError('each message is a JSON object; "text" is a string')
    if not isinstance(message.get("context_id", DEFAULT_CONTEXT), str):
        raise ValueError('"context_id" is a string')
    return message


async def _open(
    speech: SpeechService,
    contexts: dict[str, _Context],
    context_id: str,
    voice: str,
    output: OutputFormat,
    out: _Socket,
    message: dict[str, Any],
) -> _Context:
    if len(contexts) >= MAX_CONTEXTS:
        raise ValueError(f"at most {MAX_CONTEXTS} contexts may be open on one socket; close one first")
    session = await speech.session(voice, output, voice_speed(message, None))
    context = contexts[context_id] = _Context(context_id, session, out)
    return context


@router.websocket("/v1/text-to-speech/{voice_id}/multi-stream-input")
async def multi_stream_input(socket: WebSocket, voice_id: str) -> None:
    runtime = socket.app.state.runtime
    speech: SpeechService = runtime.speech
    await socket.accept()
    out = _Socket(socket, runtime.timed)
    contexts: dict[str, _Context] = {}  # open ones
    tasks: list[asyncio.Task[None]] = []  # every context's, closing ones too
    try:
        output = parse_elevenlabs_format(socket.query_params.get("output_format", "mp3_44100_128"))
        timeout = _inactivity(socket.query_params.get("inactivity_timeout"))
        await speech.find(voice_id)  # an unknown or unready voice is refused before any text is awaited
        while True:
            try:
                message = _message(await asyncio.wait_for(socket.receive_text(), timeout))
            except TimeoutError:
                await send_error(socket, f"no message for {timeout:.0f} s (inactivity_timeout)", code=1000)
                return
            if message.get("close_socket"):
                for open_context in contexts.values():
                    open_context.close()
                await asyncio.gather(*tasks, return_exceptions=True)
                await socket.close()
                return
            context_id = message.get("context_id") or DEFAULT_CONTEXT
            context = contexts.get(context_id)
            if message.get("close_context"):
                if context is not None:
                    del contexts[context_id]
                    context.close()
                continue
            if context is None:
                context = await _open(speech, contexts, context_id, voice_id, output, out, message)
                tasks.append(context.task)
            context.session.speed = voice_speed(message, context.session.speed)
            context.add(message.get("text", ""), flush=bool(message.get("flush")))
    except WebSocketDisconnect:
        return  # the client left: its contexts stop below
    except VoxcloneError as e:
        await send_error(socket, str(e))
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        await send_error(socket, f"bad message: {e}", code=1007)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
