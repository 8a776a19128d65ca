"""The one place that turns exceptions into HTTP responses: JSON bodies with a message, never a traceback."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    BadAudio,
    BadInput,
    Busy,
    ConsentRefused,
    EngineUnavailable,
    Forbidden,
    LimitExceeded,
    Unauthorized,
    UnsupportedFormat,
    VoiceConflict,
    VoiceNotFound,
    VoiceNotReady,
    VoxcloneError,
)

log = logging.getLogger("voxclone.server")

STATUS: dict[type[VoxcloneError], int] = {
    VoiceNotFound: 404,
    VoiceNotReady: 409,
    VoiceConflict: 409,
    BadAudio: 422,
    UnsupportedFormat: 422,
    BadInput: 422,
    LimitExceeded: 413,
    Busy: 503,
    EngineUnavailable: 503,
    Unauthorized: 401,
    Forbidden: 403,
}


def status_for(error: VoxcloneError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    # ElevenLabs clients read `detail`; OpenAI clients read `error.message`: give both.
    return {"detail": {"status": code, "message": message, **extra}, "error": {"type": code, "message": message}}


def _voxclone_error(request: Request, error: VoxcloneError) -> JSONResponse:
    status = status_for(error)
    headers: dict[str, str] = {}
    extra: dict[str, object] = {}
    if isinstance(error, LimitExceeded):
        extra["limit"] = error.limit
        if error.retry_after is not None:
            status = 429
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, ConsentRefused):
        extra.update(check=error.check, scores=error.scores)
    if isinstance(error, Busy):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error_body(error.code, str(error), **extra), status_code=status, headers=headers)


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid")))
    message = "; ".join(problems) or "invalid request"
    return JSONResponse(error_body("invalid_request", message), status_code=422)


def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        error_body("http_error", str(error.detail)), status_code=error.status_code, headers=getattr(error, "headers", None)
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error; see the server log"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VoxcloneError, _voxclone_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
