"""Voice enrolment routes (ElevenLabs-compatible): add a cloned voice, edit it, fetch a stored sample."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BeforeValidator, StringConstraints

from ..consent import Actor, Consent
from ..enrolment import DEFAULT_TIER, Enroller, Upload, parse_labels
from ..errors import BadInput, LimitExceeded
from ..runtime import Runtime
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
TIER_HELP = (
    "Cloning tier: `instant` (default), or `deep` (the voice speaks with its instant clone at once, then with a "
    "fit of the model to the speaker once that is done and judged better); on edit without files, `deep` refines "
    "the voice as it is"
)
ChallengeId = Annotated[
    str | None, Form(max_length=100, description="From GET /v1/voices/consent-challenge (required where consent is on)")
]
ConsentFile = Annotated[
    UploadFile | None, File(description="The speaker reading the challenge sentence (required where consent is on)")
]


async def _uploads(files: list[UploadFile], transcripts: list[str], settings: Settings) -> list[Upload]:
    if len(files) > _MAX_FILES:
        raise LimitExceeded(f"at most {_MAX_FILES} files per request", limit="files_per_request")
    uploads = []
    for index, file in enumerate(files):
        data = await read_upload(file, settings)
        transcript = transcripts[index] if index < len(transcripts) else None
        uploads.append(Upload(file_name=file.filename or f"sample-{index + 1}", data=data, transcript=transcript))
    return uploads


async def _consent(challenge_id: str | None, recording: UploadFile | None, settings: Settings) -> Consent | None:
    """The consent fields, if the client sent any (both are needed together)."""
    if challenge_id in (None, "", "null") and recording is None:
        return None
    if challenge_id in (None, "", "null") or recording is None:
        raise BadInput("send consent_challenge_id and consent (the recording) together")
    data = await recording.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise LimitExceeded("the consent recording is over the upload limit", limit="max_upload_bytes")
    return Consent(challenge_id=challenge_id, file_name=recording.filename or "consent", data=data)


@router.post("/v1/voices/add", summary="Clone a voice from one or more recordings (instant voice clone)")
async def add_voice(
    name: Annotated[str, Form(min_length=1, max_length=100)],
    files: Annotated[list[UploadFile], File(description="wav, flac, mp3, ogg/opus, webm or m4a recordings")],
    settings: Annotated[Settings, Depends(deps.settings)],
    enroller: Annotated[Enroller, Depends(deps.enroller)],
    actor: Annotated[Actor, Depends(deps.actor)],
    description: Annotated[Description | None, Absent, Form()] = None,
    labels: Annotated[Labels | None, Absent, Form()] = None,
    transcripts: Annotated[list[str] | None, Form(description="One per file, in order; optional")] = None,
    remove_background_noise: Annotated[
        bool | None, Absent, Form(description="Accepted; every sample is trimmed to speech and levelled anyway")
    ] = None,
    tier: Annotated[Tier | None, Absent, Form(description=TIER_HELP)] = None,
    engine: Annotated[
        str | None,
        Absent,
        Form(
            max_length=64, description="Engine the clone speaks with (default: VOXCLONE_CLONE_ENGINE), e.g. elevenlabs"
        ),
    ] = None,
    consent_challenge_id: ChallengeId = None,
    consent: ConsentFile = None,
) -> dict[str, Any]:
    uploads = await _uploads(files, transcripts or [], settings)
    given = await _consent(consent_challenge_id, consent, settings)
    voice = await anyio.to_thread.run_sync(
        lambda: enroller.add_voice(
            name=name,
            uploads=uploads,
            description=description or "",
            labels=parse_labels(labels),
            engine=engine,
            tier=tier or DEFAULT_TIER,
            consent=given,
            actor=actor,
        )
    )
    return {"voice_id": voice.id, "requires_verification": False}


@router.post("/v1/voices/import", summary="Add a voice from a model file (a Bark .npz prompt, a Kokoro .npy style...)")
async def import_voice(
    name: Annotated[str, Form(min_length=1, max_length=100)],
    file: Annotated[UploadFile, File(description="A voice model file an installed engine reads")],
    settings: Annotated[Settings, Depends(deps.settings)],
    runtime: Annotated[Runtime, Depends(deps.runtime)],
    description: Annotated[str, Form(max_length=1000)] = "",
) -> dict[str, Any]:
    (upload,) = await _uploads([file], [], settings)
    voice = await anyio.to_thread.run_sync(
        lambda: runtime.voice_files.add(
            name=name, file_name=upload.file_name, data=upload.data, description=description
        )
    )
    return {"voice_id": voice.id, "engine": voice.engine, "requires_verification": False}


@router.post("/v1/voices/{voice_id}/edit", summary="Rename, relabel, or add samples to a voice (re-enrols it)")
async def edit_voice(
    voice_id: str,
    settings: Annotated[Settings, Depends(deps.settings)],
    enroller: Annotated[Enroller, Depends(deps.enroller)],
    actor: Annotated[Actor, Depends(deps.actor)],
    name: Annotated[Name | None, Absent, Form()] = None,
    description: Annotated[Description | None, Absent, Form()] = None,
    labels: Annotated[Labels | None, Absent, Form()] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
    transcripts: Annotated[list[str] | None, Form()] = None,
    remove_background_noise: Annotated[bool | None, Absent, Form(description="Accepted; see /v1/voices/add")] = None,
    tier: Annotated[Tier | None, Absent, Form(description=TIER_HELP)] = None,
    consent_challenge_id: ChallengeId = None,
    consent: ConsentFile = None,
) -> dict[str, Any]:
    uploads = await _uploads(files or [], transcripts or [], settings)
    given = await _consent(consent_challenge_id, consent, settings)
    await anyio.to_thread.run_sync(
        lambda: enroller.edit(
            voice_id,
            name=name,
            description=description,
            labels=None if labels is None else parse_labels(labels),
            uploads=uploads,
            tier=tier,
            consent=given,
            actor=actor,
        )
    )
    return {"status": "ok"}


@router.get("/v1/voices/{voice_id}/samples/{sample_id}/audio", summary="A stored reference sample, as WAV")
async def sample_audio(
    voice_id: str, sample_id: str, enroller: Annotated[Enroller, Depends(deps.enroller)]
) -> Response:
    data = await anyio.to_thread.run_sync(enroller.sample_file, voice_id, sample_id)
    return Response(data, media_type="audio/wav")
