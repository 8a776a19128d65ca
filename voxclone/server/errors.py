"""The one place that turns exceptions into HTTP responses: JSON bodies with a message, never a traceback."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

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
    IdentityUnavailable,
    LimitExceeded,
    Unauthorized,
    UnsupportedFormat,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
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
    IdentityUnavailable: 503,
    UpstreamError: 502,
    UpstreamTimeout: 504,
    UpstreamRateLimited: 429,
}


def status_for(error: VoxcloneError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


# OpenAI's error `type` by status; its SDKs pick their exception class from the status alone.
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def is_elevenlabs_client(headers: Mapping[str, str]) -> bool:
    """ElevenLabs' SDKs send `xi-api-key` and `X-Fern-*` headers; OpenAI's send `Authorization: Bearer`
    and `X-Stainless-*`. Routes both speak (`/v1/models`) answer in the dialect of whoever asks.
    """
    return "xi-api-key" in headers or any(name.lower().startswith("x-fern-") for name in headers)


def speaks_openai(path: str, headers: Mapping[str, str]) -> bool:
    """Errors on OpenAI's routes take OpenAI's shape; on every other route, ElevenLabs' (FastAPI's `detail`)."""
    if path.startswith("/v1/audio/"):
        return True
    return path.rstrip("/") == "/v1/models" and not is_elevenlabs_client(headers)


def error_body(openai: bool, status: int, code: str, message: str, **extra: object) -> dict[str, object]:
    """`{"error": {"message", "type", "code"}}` for OpenAI's clients, `{"detail": {"status", "message"}}`
    for ElevenLabs' (and voxclone's own routes), so each SDK raises its own typed error with our message.
    """
    if openai:
        kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": code, **extra}}
    return {"detail": {"status": code, "message": message, **extra}}


def _body(request: Request, status: int, code: str, message: str, **extra: object) -> dict[str, object]:
    return error_body(speaks_openai(request.url.path, request.headers), status, code, message, **extra)


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
    if isinstance(error, Busy | UpstreamRateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(_body(request, status, error.code, str(error), **extra), status_code=status, headers=headers)


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid")))
    message = "; ".join(problems) or "invalid request"
    return JSONResponse(_body(request, 422, "invalid_request", message), status_code=422)


def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        _body(request, error.status_code, "http_error", str(error.detail)),
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(_body(request, 500, "internal_error", "internal error; see the server log"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VoxcloneError, _voxclone_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
