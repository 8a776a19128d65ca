"""Voice enrolment routes (ElevenLabs-compatible): add a cloned voice, add samples, fetch a sample."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BeforeValidator, StringConstraints

from ..enrolment import Enroller, Upload, parse_labels, samples_dir
from ..errors import LimitExceeded, VoiceNotFound
from ..settings import Settings
from ..voices import check_name
from . import deps

router = APIRouter(tags=["voices"])


def _absent_if_null(value: object) -> object:
    # ElevenLabs' Python SDK sends every optional form field it was not given as the string "null"
    # (e.g. `labels=null` on an instant clone); an empty field means "not given" as well.
    return None if isinstance(value, str) and value.strip().lower() in ("", "null") else value


Absent = BeforeValidator(_absent_if_null)
# Lengths go on the text itself: on `str | None` they would be checked against the None as well.
Name = Annotated[str, StringConstraints(max_length=100)]
Description = Annotated[str, StringConstraints(max_length=1000)]
Labels = Annotated[str, StringConstraints(max_length=2000)]


def enroller(request: Request) -> Enroller:
    return request.app.state.enroller  # type: ignore[no-any-return]


async def _uploads(files: list[UploadFile], transcripts: list[str], settings: Settings) -> list[Upload]:
    if len(files) > 25:
        raise LimitExceeded("at most 25 files per request", limit="files_per_request")
    uploads = []
    for index, file in enumerate(files):
        data = await file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise LimitExceeded(
                f"{file.filename} is over the {settings.max_upload_bytes // (1024 * 1024)} MB upload limit",
                limit="max_upload_bytes",
            )
        transcript = transcripts[index] if index < len(transcripts) else None
        uploads.append(Upload(file_name=file.filename or f"sample-{index + 1}", data=data, transcript=transcript))
    return uploads


@router.post("/v1/voices/add", summary="Clone a voice from one or more recordings (instant voice clone)")
async def add_voice(
    name: Annotated[str, Form(min_length=1, max_length=100)],
    files: Annotated[list[UploadFile], File(description="wav, flac, mp3, ogg/opus, webm or m4a recordings")],
    settings: Annotated[Settings, Depends(deps.settings)],
    enroller: Annotated[Enroller, Depends(enroller)],
    description: Annotated[Description | None, Absent, Form()] = None,
    labels: Annotated[Labels | None, Absent, Form()] = None,
    transcripts: Annotated[list[str] | None, Form(description="One per file, in order; optional")] = None,
    remove_background_noise: Annotated[
        bool | None, Absent, Form(description="Accepted; every sample is trimmed to speech and levelled anyway")
    ] = None,
) -> dict[str, Any]:
    uploads = await _uploads(files, transcripts or [], settings)
    voice = await anyio.to_thread.run_sync(
        lambda: enroller.add_voice(
            name=check_name(name), uploads=uploads, description=description or "", labels=parse_labels(labels)
        )
    )
    return {"voice_id": voice.id, "requires_verification": False}


@router.post("/v1/voices/{voice_id}/edit", summary="Rename, relabel, or add samples to a voice (re-enrols it)")
async def edit_voice(
    voice_id: str,
    settings: Annotated[Settings, Depends(deps.settings)],
    enroller: Annotated[Enroller, Depends(enroller)],
    name: Annotated[Name | None, Absent, Form()] = None,
    description: Annotated[Description | None, Absent, Form()] = None,
    labels: Annotated[Labels | None, Absent, Form()] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
    transcripts: Annotated[list[str] | None, Form()] = None,
    remove_background_noise: Annotated[bool | None, Absent, Form(description="Accepted; see /v1/voices/add")] = None,
) -> dict[str, Any]:
    library = enroller.speaker.library
    voice = library.get(voice_id)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = check_name(name)
    if description is not None:
        changes["description"] = description
    if labels is not None:
        changes["labels"] = parse_labels(labels)
    if changes:
        library.update(voice.id, **changes)
    if files:
        uploads = await _uploads(files, transcripts or [], settings)
        await anyio.to_thread.run_sync(lambda: enroller.add_samples(voice.id, uploads))
    return {"status": "ok"}


@router.get("/v1/voices/{voice_id}/samples/{sample_id}/audio", summary="A stored reference sample, as WAV")
async def sample_audio(voice_id: str, sample_id: str, enroller: Annotated[Enroller, Depends(enroller)]) -> FileResponse:
    voice = enroller.speaker.library.get(voice_id)
    if voice.files_dir is None or not sample_id.replace("-", "").isalnum():
        raise VoiceNotFound(f"voice {voice.name!r} has no sample {sample_id[:40]!r}")
    path = samples_dir(voice.files_dir) / f"{sample_id}.wav"
    if not path.is_file():
        raise VoiceNotFound(f"voice {voice.name!r} has no sample {sample_id[:40]!r}")
    return FileResponse(path, media_type="audio/wav")

