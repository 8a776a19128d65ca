"""Streaming speech over HTTP: ElevenLabs' /stream route and OpenAI's `stream`/`stream_format`."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ..speech import SpeechService
from ..streaming import AudioStream
from . import deps
from .schemas import ElevenLabsSpeech

router = APIRouter(tags=["speech"])

# Streamed audio goes out as it is made: never stored, and never held back or re-encoded on the way
# (`X-Accel-Buffering: no` stops nginx buffering it; `no-transform` stops proxies compressing it).
STREAM_HEADERS = {"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"}


async def _started(stream: AudioStream) -> AsyncIterator[bytes]:
    """The stream's chunks, its first one already awaited: a failure before any audio (an upstream's
    refusal, a missing model) is then raised before the response starts, and gets its own status."""
    reader = stream.read()
    first = await anext(reader, b"")

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in reader:
            yield chunk

    return body()


async def audio_response(stream: AudioStream) -> StreamingResponse:
    return StreamingResponse(
        await _started(stream),
        media_type=stream.content_type,
        headers={"X-Voice-Id": stream.voice_id, **STREAM_HEADERS},
    )


async def _sse(stream: AudioStream) -> AsyncIterator[bytes]:
    """OpenAI's speech SSE: `speech.audio.delta` events with base64 audio, then `speech.audio.done`."""
    async for chunk in stream.read():
        event = {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()}
        yield f"data: {json.dumps(event)}\n\n".encode()
    done = {
        "type": "speech.audio.done",
        "usage": {"input_tokens": stream.pieces, "output_tokens": 0, "total_tokens": 0},
    }
    yield f"data: {json.dumps(done)}\n\n".encode()


def sse_response(stream: AudioStream) -> StreamingResponse:
    return StreamingResponse(_sse(stream), media_type="text/event-stream", headers=STREAM_HEADERS)


@router.post("/v1/text-to-speech/{voice_id}/stream", summary="ElevenLabs-compatible streaming text to speech")
async def elevenlabs_stream(
    voice_id: str,
    body: ElevenLabsSpeech,
    speech: Annotated[SpeechService, Depends(deps.speech)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
) -> StreamingResponse:
    return await audio_response(await speech.stream(body.speech_request(voice_id, output_format)))
