"""Voice library routes, in ElevenLabs' shapes plus `status`, `engine`, `progress`, `error` and `scores`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ..enrolment import list_samples
from ..synthesis import Speaker
from ..voices import Voice
from . import deps

router = APIRouter(tags=["voices"])


def voice_json(voice: Voice) -> dict[str, Any]:
    return {
        "voice_id": voice.id,
        "name": voice.name,
        "category": voice.category,
        "labels": voice.labels,
        "description": voice.description,
        "preview_url": None,
        "engine": voice.engine,
        "status": voice.status,
        "progress": round(voice.progress, 3),
        "error": voice.error,
        "scores": voice.scores,
        "created_at_unix": int(voice.created_at),
        "version": voice.version,
        "samples": [
            {"sample_id": s["sample_id"], "file_name": s["file_name"], "duration_s": s["duration_s"]} for s in list_samples(voice.files_dir)
        ],
    }


@router.get("/v1/voices", summary="List voices")
async def list_voices(speaker: Annotated[Speaker, Depends(deps.speaker)]) -> dict[str, Any]:
    return {"voices": [voice_json(v) for v in speaker.library.list()]}


@router.get("/v1/voices/{voice_id}", summary="One voice, with its enrolment status and scores")
async def get_voice(voice_id: str, speaker: Annotated[Speaker, Depends(deps.speaker)]) -> dict[str, Any]:
    return voice_json(speaker.library.get(voice_id))


@router.delete("/v1/voices/{voice_id}", summary="Delete a voice, its files and its cached audio")
async def delete_voice(voice_id: str, speaker: Annotated[Speaker, Depends(deps.speaker)]) -> dict[str, Any]:
    voice = speaker.library.delete(voice_id)
    speaker.cache.drop_voice(voice.id)
    return {"status": "ok", "voice_id": voice.id}
