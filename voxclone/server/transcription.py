"""OpenAI-compatible transcription: POST /v1/audio/transcriptions (multipart), whole or as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response, StreamingResponse

from ..asr import Segment, TranscribeOptions
from ..settings import Settings
from ..transcription import TranscriptionService, render
from . import deps
from .uploads import read_upload

router = APIRouter(tags=["transcription"])
Granularity = Literal["word", "segment"]


async def _events(segments: AsyncIterator[Segment]) -> AsyncIterator[bytes]:
    """OpenAI's transcription stream: a `transcript.text.delta` per segment, then `transcript.text.done`."""
    texts: list[str] = []
    async for segment in segments:
        delta = (" " if texts else "") + segment.text
        texts.append(segment.text)
        event = {
            "type": "transcript.text.delta",
            "delta": delta,
            "segment": {"id": segment.id, "start": segment.start, "end": segment.end},
        }
        yield f"data: {json.dumps(event)}\n\n".encode()
    yield f"data: {json.dumps({'type': 'transcript.text.done', 'text': ' '.join(texts)})}\n\n".encode()


@router.post("/v1/audio/transcriptions", summary="OpenAI-compatible transcription (Whisper tiny.en or base)")
async def transcriptions(
    file: Annotated[UploadFile, File(description="wav, flac, mp3, ogg/opus, webm or m4a")],
    service: Annotated[TranscriptionService, Depends(deps.transcription)],
    settings: Annotated[Settings, Depends(deps.settings)],
    model: Annotated[
        str, Form(max_length=100, description="tiny.en, base, or whisper-1 (the server's default)")
    ] = "whisper-1",
    language: Annotated[str | None, Form(max_length=16, description="ISO-639-1 code; empty: detect (base)")] = None,
    prompt: Annotated[str | None, Form(max_length=2000)] = None,
    response_format: Annotated[Literal["json", "text", "srt", "vtt", "verbose_json"], Form()] = "json",
    granularities: Annotated[list[Granularity] | None, Form(alias="timestamp_granularities[]")] = None,
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    stream: Annotated[
        bool, Form(description="Send `transcript.text.delta` server-sent events as segments are decoded")
    ] = False,
) -> Response:
    name = service.model(model)
    words = "word" in (granularities or [])
    options = TranscribeOptions(language=language or None, prompt=prompt or None, temperature=temperature, words=words)
    audio = await service.decode(await read_upload(file, settings))
    if stream:
        events = _events(service.stream(audio, name, options))
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    transcript = await service.transcribe(audio, name, options)
    segments = granularities is None or "segment" in granularities
    rendered = render(transcript, response_format, words=words, segments=segments)
    return Response(rendered.body, media_type=rendered.content_type)
