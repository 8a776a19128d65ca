"""Provenance routes: ask whether audio carries voxclone's watermark; get a consent challenge; hear a
voice's kept consent recordings (managers only)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import Response

from ..consent import Actor, Consents, challenge_json
from ..errors import LimitExceeded, VoiceNotFound
from ..runtime import Runtime
from . import deps

router = APIRouter(tags=["provenance"])


@router.post(
    "/v1/watermark/detect",
    summary="Does this audio carry voxclone's watermark? If this server made it: which voice, when",
)
async def detect(
    file: Annotated[UploadFile, File(description="Any audio file (wav, mp3, ogg/opus, flac, webm, m4a...)")],
    runtime: Annotated[Runtime, Depends(deps.runtime)],
) -> dict[str, Any]:
    data = await file.read(runtime.settings.max_upload_bytes + 1)
    if len(data) > runtime.settings.max_upload_bytes:
        raise LimitExceeded("the file is over the upload limit", limit="max_upload_bytes")
    detection = await anyio.to_thread.run_sync(lambda: runtime.provenance.detect(data))
    return detection.json()


@router.get(
    "/v1/voices/consent-challenge", summary="A sentence for the speaker to read aloud, proving consent to be cloned"
)
async def consent_challenge(
    runtime: Annotated[Runtime, Depends(deps.runtime)], actor: Annotated[Actor, Depends(deps.manager)]
) -> dict[str, Any]:
    challenge = await anyio.to_thread.run_sync(runtime.consents.issue)
    return {**challenge_json(challenge), "required": runtime.consents.required(actor)}


@router.get(
    "/v1/voices/{voice_id}/consent/{consent_id}/audio", summary="A kept consent recording, as WAV (managers only)"
)
def consent_audio(
    voice_id: str,
    consent_id: str,
    runtime: Annotated[Runtime, Depends(deps.runtime)],
    _: Annotated[Actor, Depends(deps.manager)],
) -> Response:
    # A plain `def`: FastAPI runs it on a thread, and the voice's files may be in a bucket.
    voice = runtime.library.get(voice_id)
    data = Consents.recording(runtime.library.blobs, voice.id, consent_id)
    if data is None:
        raise VoiceNotFound(f"voice {voice.name!r} has no consent recording {consent_id[:20]!r}")
    return Response(data, media_type="audio/wav")
