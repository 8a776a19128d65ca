"""Voice enrolment routes (ElevenLabs-compatible): add a cloned voice, edit it, fetch a stored sample."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BeforeValidator, StringConstraints

from ..enrolment import DEFAULT_TIER, Enroller, Upload, parse_labels
from ..errors import LimitExceeded
from ..settings import Settings
from . import deps
from .uploads import read_upload

router = APIRouter(tags=["voices"])
_MAX_FILES = 25


def _absent_if_null(value: object) -> object:
    # ElevenLabs' Python SDK sends every optional form field it was not given as the string "null"
    # (e.g. `labels=null` on an instant clone); an empty field means "not given" as well.
    return None if isinstance(value, str) and value.strip().lower() in ("", "null") else value


Absent = BeforeValidator(_absent_if_null)
# Lengths go on the text itself: on `str | None` they would be checked against the None as well.
Name = Annotated[str, StringConstraints(max_length=100)]
Description = Annotated[str, StringConstraints(max_length=1000)]
Labels = Annotated[str, StringConstraints(max_length=2000)]
Tier = Annotated[str, StringConstraints(max_length=32)]
TIER_HELP = "Cloning tier: `instant` (default), or another installed tier"


async def _uploads(files: list[UploadFile], transcripts: list[str], settings: Settings) -> list[Upload]:
    if len(files) > _MAX_FILES:
        raise LimitExceeded(f"at most {_MAX_FILES} files per request", limit="files_per_request")
    uploads = []
    for index, file in enumerate(files):
        data = await read_upload(file, settings)
        transcript = transcripts[index] if index < len(transcripts) else None
        uploads.append(Upload(file_name=file.filename or f"sample-{index + 1}", data=data, transcript=transcript))
    return uploads


@router.post("/v1/voices/add", summary="Clone a voice from one or more recordings (instant voice clone)")
async def add_voice(
    name: Annotated[str, Form(min_length=1, max_length=100)],
    files: Annotated[list[UploadFile], File(description="wav, flac, mp3, ogg/opus, webm or m4a recordings")],
    settings: Annotated[Settings, Depends(deps.settings)],
    enroller: Annotated[Enroller, Depends(deps.enroller)],
    description: Annotated[Description | None, Absent, Form()] = None,
    labels: Annotated[Labels | None, Absent, Form()] = None,
    transcripts: Annotated[list[str] | None, Form(description="One per file, in order; optional")] = None,
    remove_background_noise: Annotated[
        bool | None, Absent, Form(description="Accepted; every sample is trimmed to speech and levelled anyway")
    ] = None,
    tier: Annotated[Tier | None, Absent, Form(description=TIER_HELP)] = None,
) -> dict[str, Any]:
    uploads = await _uploads(files, transcripts or [], settings)
    voice = await anyio.to_thread.run_sync(
        lambda: enroller.add_voice(
            name=name, uploads=uploads, description=description or "", labels=parse_labels(labels), tier=tier or DEFAULT_TIER
        )
    )
    return {"voice_id": voice.id, "requires_verification": False}


@router.post("/v1/voices/{voice_id}/edit", summary="Rename, relabel, or add samples to a voice (re-enrols it)")
async def edit_voice(
    voice_id: str,
    settings: Annotated[Settings, Depends(deps.settings)],
    enroller: Annotated[Enroller, Depends(deps.enroller)],
    name: Annotated[Name | None, Absent, Form()] = None,
    description: Annotated[Description | None, Absent, Form()] = None,
    labels: Annotated[Labels | None, Absent, Form()] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
    transcripts: Annotated[list[str] | None, Form()] = None,
    remove_background_noise: Annotated[bool | None, Absent, Form(description="Accepted; see /v1/voices/add")] = None,
    tier: Annotated[Tier | None, Absent, Form(description=TIER_HELP)] = None,
) -> dict[str, Any]:
    uploads = await _uploads(files or [], transcripts or [], settings)
    await anyio.to_thread.run_sync(
        lambda: enroller.edit(
            voice_id, name=name, description=description, labels=None if labels is None else parse_labels(labels),
            uploads=uploads, tier=tier or DEFAULT_TIER,
        )
    )
    return {"status": "ok"}


@router.get("/v1/voices/{voice_id}/samples/{sample_id}/audio", summary="A stored reference sample, as WAV")
async def sample_audio(voice_id: str, sample_id: str, enroller: Annotated[Enroller, Depends(deps.enroller)]) -> Response:
    data = await anyio.to_thread.run_sync(enroller.sample_file, voice_id, sample_id)
    return Response(data, media_type="audio/wav")
