"""Reading uploaded files within the upload limit, the same way for every route that takes audio."""

from __future__ import annotations

from fastapi import UploadFile

from ..errors import LimitExceeded
from ..settings import Settings


async def read_upload(file: UploadFile, settings: Settings) -> bytes:
    """The file's bytes; LimitExceeded (413) past settings.max_upload_bytes, without reading further."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise LimitExceeded(
            f"{file.filename or 'the upload'} is over the {settings.max_upload_bytes // (1024 * 1024)} MB upload limit",
            limit="max_upload_bytes",
        )
    return data
