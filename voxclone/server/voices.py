"""Voice library routes, in ElevenLabs' shapes plus `status`, `engine`, `tier`, `refining`, `progress`, `error`
and `scores`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request

from ..consent import Actor, Consents
from ..enrolment import Enroller
from ..voice_search import Sort, VoiceQuery, search
from ..voices import Voice
from . import deps
from .schemas import DEFAULT_VOICE_SETTINGS, VoiceSettings, voice_settings

router = APIRouter(tags=["voices"])
Category = Literal["premade", "cloned", "file", "generated", "professional", "famous", "high_quality"]
VoiceType = Literal["personal", "community", "default", "workspace", "non-default", "non-community", "saved"]


def voice_json(voice: Voice, samples: list[dict[str, Any]], refining: dict[str, Any] | None = None) -> dict[str, Any]:
    """A voice as the API shows it; `refining` is its latest refinement (deep clone) job, if it has one."""
    return {
        "voice_id": voice.id,
        "name": voice.name,
        "category": voice.category,
        "labels": voice.labels,
        "description": voice.description,
        "preview_url": None,
        "settings": voice_settings(voice.settings),
        "engine": voice.engine,
        "tier": voice.tier or None,
        "refining": refining,
        "status": voice.status,
        "progress": round(voice.progress, 3),
        "error": voice.error,
        "scores": voice.scores,
        "created_at_unix": int(voice.created_at),
        "version": voice.version,
        "samples": samples,
    }


# Routes that read voices' files (samples, consents, engine files: rows or a bucket) are plain `def`:
# FastAPI runs them on a thread, so those reads never hold up the event loop.
@router.get("/v1/voices", summary="List voices")
def list_voices(enroller: Annotated[Enroller, Depends(deps.enroller)]) -> dict[str, Any]:
    refining = enroller.refinements()
    return {"voices": [voice_json(v, enroller.samples(v), refining.get(v.id)) for v in enroller.library.all()]}


@router.get("/v2/voices", summary="Search voices, a page at a time (ElevenLabs' voices.search)")
def search_voices(
    enroller: Annotated[Enroller, Depends(deps.enroller)],
    search_text: Annotated[
        str | None, Query(alias="search", max_length=200, description="In name, description, labels, category")
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    next_page_token: Annotated[str | None, Query(max_length=20)] = None,
    category: Category | None = None,
    voice_type: VoiceType | None = None,
    sort: Sort | None = None,
    sort_direction: Annotated[
        Literal["asc", "desc"] | None, Query(description="Default: desc by date, asc by name")
    ] = None,
    gender: Annotated[str | None, Query(max_length=50)] = None,
    age: Annotated[str | None, Query(max_length=50)] = None,
    accent: Annotated[str | None, Query(max_length=50)] = None,
    language: Annotated[str | None, Query(max_length=50)] = None,
    voice_ids: Annotated[list[str] | None, Query(max_length=100)] = None,
    include_total_count: bool = True,
) -> dict[str, Any]:
    labels = {k: v for k, v in {"gender": gender, "age": age, "accent": accent, "language": language}.items() if v}
    query = VoiceQuery(
        search=search_text,
        category=category,
        voice_type=voice_type,
        labels=labels,
        voice_ids=tuple(voice_ids or ()),
        sort=sort,
        descending=None if sort_direction is None else sort_direction == "desc",
        page_size=page_size,
        page_token=next_page_token,
    )
    page = search(enroller.library.all(), query)
    refining = enroller.refinements()
    return {
        "voices": [voice_json(v, enroller.samples(v), refining.get(v.id)) for v in page.voices],
        "has_more": page.next_token is not None,
        "total_count": page.total,  # always counted: the whole library is one cheap query
        "next_page_token": page.next_token,
    }


@router.get("/v1/voices/settings/default", summary="The voice settings a voice has until they are changed")
async def default_settings() -> dict[str, Any]:
    return DEFAULT_VOICE_SETTINGS.model_dump()


@router.get("/v1/voices/{voice_id}/settings", summary="A voice's settings (its speed is the default for its requests)")
def get_settings(voice_id: str, enroller: Annotated[Enroller, Depends(deps.enroller)]) -> dict[str, Any]:
    return voice_settings(enroller.library.get(voice_id).settings)


@router.post("/v1/voices/{voice_id}/settings/edit", summary="Change a voice's settings (the fields given)")
@router.post("/v1/voices/{voice_id}/settings", include_in_schema=False)
async def edit_settings(
    voice_id: str, body: VoiceSettings, enroller: Annotated[Enroller, Depends(deps.enroller)]
) -> dict[str, Any]:
    await anyio.to_thread.run_sync(lambda: enroller.edit_settings(voice_id, body.model_dump(exclude_none=True)))
    return {"status": "ok"}


@router.get(
    "/v1/voices/{voice_id}", summary="One voice, with its enrolment status and scores (and its consents, to managers)"
)
def get_voice(voice_id: str, request: Request, enroller: Annotated[Enroller, Depends(deps.enroller)]) -> dict[str, Any]:
    voice = enroller.library.get(voice_id)
    shown = voice_json(voice, enroller.samples(voice), enroller.refinements(voice.id).get(voice.id))
    if deps.can_manage(request):
        shown["consent"] = Consents.records(enroller.library.blobs, voice.id)
    return shown


@router.delete(
    "/v1/voices/{voice_id}", summary="Delete a voice: its enrolment stops, its files, consents and cached audio go"
)
async def delete_voice(
    voice_id: str, enroller: Annotated[Enroller, Depends(deps.enroller)], actor: Annotated[Actor, Depends(deps.actor)]
) -> dict[str, Any]:
    voice = await anyio.to_thread.run_sync(lambda: enroller.delete(voice_id, actor))
    return {"status": "ok", "voice_id": voice.id}
