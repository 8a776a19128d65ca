"""ElevenLabs' text to speech with timestamps: the audio (base64) and when each character is heard.

`/with-timestamps` answers one JSON object; `/stream/with-timestamps` one JSON object per line as each
piece is made, its times counted from the start of the whole clip (as pipecat reads them).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ..timestamps import TimedAudio, TimedSpeech
from . import deps
from .schemas import ElevenLabsSpeech

router = APIRouter(tags=["speech"])


def _json(part: TimedAudio) -> dict[str, Any]:
    return {
        "audio_base64": base64.b64encode(part.audio).decode(),
        "alignment": part.alignment.as_http(),
        "normalized_alignment": part.normalized.as_http(),
    }


@router.post(
    "/v1/text-to-speech/{voice_id}/with-timestamps", summary="ElevenLabs-compatible speech with character timings"
)
async def with_timestamps(
    voice_id: str,
    body: ElevenLabsSpeech,
    timed: Annotated[TimedSpeech, Depends(deps.timed)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
) -> dict[str, Any]:
    return _json(await timed.clip(body.speech_request(voice_id, output_format)))


async def _lines(parts: AsyncIterator[TimedAudio]) -> AsyncIterator[bytes]:
    async for part in parts:
        yield (json.dumps(_json(part)) + "\n").encode()


@router.post(
    "/v1/text-to-speech/{voice_id}/stream/with-timestamps",
    summary="ElevenLabs-compatible streaming speech with character timings",
)
async def stream_with_timestamps(
    voice_id: str,
    body: ElevenLabsSpeech,
    timed: Annotated[TimedSpeech, Depends(deps.timed)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
) -> StreamingResponse:
    parts = await timed.stream(body.speech_request(voice_id, output_format))
    return StreamingResponse(_lines(parts), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})
