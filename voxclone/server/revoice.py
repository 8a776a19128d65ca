"""ElevenLabs-compatible speech to speech: a recording said again in another voice, on its own clock."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response, StreamingResponse

from ..audio import parse_elevenlabs_format
from ..revoice import RevoiceOptions, Revoicer, Sentence
from ..settings import Settings
from . import deps
from .uploads import read_upload

router = APIRouter(tags=["speech"])
_PCM_INPUT = "pcm_s16le_16"  # ElevenLabs' raw input: 16-bit little-endian, 16 kHz, mono


async def _prepared(
    audio: UploadFile, file_format: str, revoicer: Revoicer, settings: Settings, voice_id: str
) -> tuple[np.ndarray, RevoiceOptions, list[Sentence]]:
    """The upload decoded and heard: its samples, the options, its sentences (4xx errors come from here)."""
    data = await read_upload(audio, settings)
    samples = await revoicer.transcription.decode(data, pcm_rate=16_000 if file_format == _PCM_INPUT else None)
    options = RevoiceOptions(voice=voice_id)
    return samples, options, await revoicer.hear(samples, options)


@router.post("/v1/speech-to-speech/{voice_id}", summary="ElevenLabs-compatible speech to speech (voice changer)")
async def speech_to_speech(
    voice_id: str,
    audio: Annotated[
        UploadFile, File(description="wav, flac, mp3, ogg/opus, webm or m4a; or raw PCM with file_format")
    ],
    revoicer: Annotated[Revoicer, Depends(deps.revoicer)],
    settings: Annotated[Settings, Depends(deps.settings)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
    model_id: Annotated[str | None, Form(max_length=100, description="Accepted for compatibility")] = None,
    file_format: Annotated[Literal["pcm_s16le_16", "other"], Form()] = "other",
) -> Response:
    output = parse_elevenlabs_format(output_format)
    samples, options, found = await _prepared(audio, file_format, revoicer, settings, voice_id)
    body = await revoicer.file(samples, found, options, output)
    return Response(body, media_type=output.content_type, headers={"X-Voice-Id": voice_id})


@router.post("/v1/speech-to-speech/{voice_id}/stream", summary="ElevenLabs-compatible streaming speech to speech")
async def speech_to_speech_stream(
    voice_id: str,
    audio: Annotated[UploadFile, File()],
    revoicer: Annotated[Revoicer, Depends(deps.revoicer)],
    settings: Annotated[Settings, Depends(deps.settings)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
    model_id: Annotated[str | None, Form(max_length=100, description="Accepted for compatibility")] = None,
    file_format: Annotated[Literal["pcm_s16le_16", "other"], Form()] = "other",
) -> StreamingResponse:
    output = parse_elevenlabs_format(output_format)
    samples, options, found = await _prepared(audio, file_format, revoicer, settings, voice_id)
    chunks = revoicer.encoded(revoicer.parts(samples, found, options), output)
    return StreamingResponse(
        chunks, media_type=output.content_type, headers={"X-Voice-Id": voice_id, "Cache-Control": "no-store"}
    )
