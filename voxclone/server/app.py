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
from ..auth import KeyRing
from ..database import Database
from ..key_store import open_keys
from ..oidc import TokenVerifier
from ..rate_limits import SharedWindows
from ..runtime import Runtime
from ..settings import Settings
from . import (
    account,
    enrol,
    multistream,
    ops,
    provenance,
    realtime,
    revoice,
    speech,
    streaming,
    timestamps,
    transcription,
    voices,
    web,
    websocket,
)
from .errors import install_error_handlers
from .proxy import ProxyMiddleware, RootPathMiddleware, TrustedProxies
from .security import AuthMiddleware, BodyLimitMiddleware, RateLimit, RateLimitMiddleware, origin_pattern

log = logging.getLogger("voxclone.server")
_FORM_OVERHEAD = 256 * 1024  # multipart boundaries and form fields around an upload


def key_ring(settings: Settings, database: Database) -> KeyRing:
    """Keys from VOXCLONE_API_KEYS (every scope) and the library's named keys (the keys file, default
    DATA_DIR/keys.json, or the shared database's)."""
    return KeyRing(settings.api_keys, open_keys(settings, database))


def rate_limit(settings: Settings, database: Database) -> RateLimit | None:
    """The rate limit, counted in this process, or in the database when several processes serve it."""
    if not settings.rate_limit:
        return None
    limit = RateLimit(settings.rate_limit)
    if settings.shared_rate_limits:
        limit.shared = SharedWindows(
            database, limit.item.amount, limit.item.get_expiry(), sync_s=settings.rate_limit_sync_s
        )
    return limit


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Models load at start-up when `settings.preload`, else on first use."""
    pattern = origin_pattern(settings.cors_origins)  # bad CORS origins or proxies fail here, at start-up
    trusted = TrustedProxies(settings.trusted_proxies)
    tokens = TokenVerifier.from_settings(settings)
    runtime = runtime or Runtime(settings)
    keys = key_ring(settings, runtime.database)  # a bad keys file too

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.preload:
            await anyio.to_thread.run_sync(runtime.load)  # off the event loop, before the first request
        runtime.start(asyncio.get_running_loop())
        yield
        await runtime.stop()
        runtime.close()

    app = FastAPI(title="voxclone", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.keys = keys
    install_error_handlers(app)
    # Added last runs first: the proxy and root-path middlewares settle the client's address and the
    # path before anything reads either; CORS answers preflights before auth; auth identifies the
    # caller before the rate limit counts it; the body limit guards everything after.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    app.state.rate_limit = rate_limit(settings, runtime.database)
    if app.state.rate_limit:
        app.add_middleware(RateLimitMiddleware, rate=app.state.rate_limit)
    app.add_middleware(AuthMiddleware, keys=keys, tokens=tokens, allow_public=settings.allow_public_without_keys)
    if pattern:
        # Any request header: the official SDKs in a browser add their own (X-Stainless-*, X-Fern-*),
        # which change from release to release. The origin allow-list is what guards access.
        app.add_middleware(
            CORSMiddleware,
            allow_origin_regex=pattern,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["X-Voice-Id"],
        )
    if settings.root_path:
        app.add_middleware(RootPathMiddleware, root_path=settings.root_path)
    app.add_middleware(ProxyMiddleware, trusted=trusted)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        route = request.scope.get("route")
        runtime.metrics.requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    # provenance before voices: its /v1/voices/consent-challenge must not be taken for a voice id
    for router in (
        speech.router,
        streaming.router,
        timestamps.router,
        websocket.router,
        multistream.router,
        transcription.router,
        revoice.router,
        realtime.router,
        provenance.router,
        enrol.router,
        voices.router,
        account.router,
        ops.router,
        web.router,
    ):
        app.include_router(router)
    app.mount("/web", web.static_files(), name="web")
    return app
