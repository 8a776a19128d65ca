"""Voice library routes, in ElevenLabs' shapes plus `status`, `engine`, `tier`, `progress`, `error` and `scores`."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request

from ..consent import Actor, Consents
from ..enrolment import Enroller
from ..voices import Voice
from . import deps

router = APIRouter(tags=["voices"])


def voice_json(voice: Voice, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "voice_id": voice.id,
        "name": voice.name,
        "category": voice.category,
        "labels": voice.labels,
        "description": voice.description,
        "preview_url": None,
        "engine": voice.engine,
        "tier": voice.tier or None,
        "status": voice.status,
        "progress": round(voice.progress, 3),
        "error": voice.error,
        "scores": voice.scores,
        "created_at_unix": int(voice.created_at),
        "version": voice.version,
        "samples": samples,
    }


@router.get("/v1/voices", summary="List voices")
async def list_voices(enroller: Annotated[Enroller, Depends(deps.enroller)]) -> dict[str, Any]:
    return {"voices": [voice_json(v, enroller.samples(v)) for v in enroller.library.all()]}


@router.get("/v1/voices/{voice_id}", summary="One voice, with its enrolment status and scores (and its consents, to managers)")
async def get_voice(voice_id: str, request: Request, enroller: Annotated[Enroller, Depends(deps.enroller)]) -> dict[str, Any]:
    voice = enroller.library.get(voice_id)
    shown = voice_json(voice, enroller.samples(voice))
    if deps.can_manage(request):
        shown["consent"] = Consents.records(voice.files_dir)
    return shown


@router.delete("/v1/voices/{voice_id}", summary="Delete a voice: its enrolment stops, its files, consents and cached audio go")
async def delete_voice(
    voice_id: str, enroller: Annotated[Enroller, Depends(deps.enroller)], actor: Annotated[Actor, Depends(deps.actor)]
) -> dict[str, Any]:
    voice = await anyio.to_thread.run_sync(lambda: enroller.delete(voice_id, actor))
    return {"status": "ok", "voice_id": voice.id}
