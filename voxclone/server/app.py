"""The application factory: one Settings in, one FastAPI app out, its parts built by voxclone.runtime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from ..auth import KeyRing, KeysFile
from ..runtime import Runtime
from ..settings import Settings
from . import enrol, ops, provenance, speech, streaming, voices, web, websocket
from .errors import install_error_handlers
from .security import AuthMiddleware, BodyLimitMiddleware, RateLimitMiddleware, origin_pattern

log = logging.getLogger("voxclone.server")
_FORM_OVERHEAD = 256 * 1024  # multipart boundaries and form fields around an upload


def key_ring(settings: Settings) -> KeyRing:
    """Keys from VOXCLONE_API_KEYS (every scope) and the keys file (default: DATA_DIR/keys.json)."""
    return KeyRing(settings.api_keys, KeysFile(settings.keys_path))


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Models load at start-up when `settings.preload`, else on first use."""
    keys = key_ring(settings)  # bad keys file or CORS origins fail here, at start-up, not per request
    pattern = origin_pattern(settings.cors_origins)
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.preload:
            await anyio.to_thread.run_sync(runtime.load)  # off the event loop, before the first request
        runtime.start(asyncio.get_running_loop())
        yield
        runtime.close()

    app = FastAPI(title="voxclone", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.keys = keys
    install_error_handlers(app)
    # Added last runs first: CORS answers preflights before auth; auth identifies the caller before
    # the rate limit counts it; the body limit guards everything after.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    if settings.rate_limit:
        app.add_middleware(RateLimitMiddleware, rate=settings.rate_limit)
    app.add_middleware(AuthMiddleware, keys=keys)
    if pattern:
        app.add_middleware(
            CORSMiddleware, allow_origin_regex=pattern, allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "xi-api-key"], expose_headers=["X-Voice-Id"],
        )

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        route = request.scope.get("route")
        runtime.metrics.requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    # provenance before voices: its /v1/voices/consent-challenge must not be taken for a voice id
    routers = (speech.router, streaming.router, websocket.router, provenance.router, enrol.router, voices.router, ops.router, web.router)
    for router in routers:
        app.include_router(router)
    app.mount("/web", web.static_files(), name="web")
    return app
