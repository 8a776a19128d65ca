"""Exposure controls, one ASGI middleware each concern: who the caller is (API keys, or a verified JWT)
and what they may do, request rate, body size, and the CORS allow-list (Starlette's CORSMiddleware fed a
checked origin pattern).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import anyio
from limits import parse as parse_rate
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..auth import KeyRing, Scope, digest
from ..errors import Forbidden, Unauthorized, VoxcloneError
from ..oidc import TokenVerifier, looks_like_jwt
from ..rate_limits import SharedWindows
from .asgi import ASGIApp, Receive, Scope_, Send, header_map, json_error, route_path
from .errors import status_for
from .proxy import forwarded

log = logging.getLogger("voxclone.server")

# Open without a key: the page and its assets, health, and the API description.
_OPEN_PATHS = ("/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/favicon.ico")
_OPEN_PREFIXES = ("/web/",)
_WILDCARD_ORIGIN = re.compile(r"^(https?)://\*\.((?:[a-z0-9-]+\.)+[a-z0-9-]+)(:\d{1,5})?$")
_QUERY_KEY = "xi_api_key"  # browsers cannot set headers on a WebSocket, so it may come in the URL
_PROTOCOL_KEY = "openai-insecure-api-key."  # ... or as a WebSocket subprotocol, as OpenAI's Realtime clients send it
_EXACT_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


def origin_pattern(origins: list[str]) -> str | None:
    """One regex for the allow-list: exact origins, and `scheme://*.domain` for its subdomains only.

    Anything else (a bare `*`, a path, a wildcard elsewhere) is refused at start-up, loudly.
    """
    parts = []
    for origin in origins:
        origin = origin.strip().lower().rstrip("/")
        wildcard = _WILDCARD_ORIGIN.match(origin)
        if wildcard:
            scheme, domain, port = wildcard.groups()
            parts.append(f"{scheme}://(?:[a-z0-9-]+\\.)+{re.escape(domain)}{re.escape(port or '')}")
        elif _EXACT_ORIGIN.match(origin):
            parts.append(re.escape(origin))
        else:
            raise ValueError(
                f"CORS origin {origin!r} is not allowed: use exact origins like https://app.example.com "
                "or subdomain wildcards like https://*.example.com"
            )
    return "|".join(parts) or None


def presented_key(scope: Scope_) -> str | None:
    """The key from `Authorization: Bearer`, `xi-api-key`, or (WebSocket only) the subprotocol
    `openai-insecure-api-key.KEY` or `?xi_api_key=`."""
    headers = header_map(scope)
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if "xi-api-key" in headers:
        return headers["xi-api-key"].strip()
    if scope["type"] == "websocket":
        for protocol in headers.get("sec-websocket-protocol", "").split(","):
            if protocol.strip().startswith(_PROTOCOL_KEY):  # OpenAI's browser clients
                return protocol.strip()[len(_PROTOCOL_KEY) :]
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(_QUERY_KEY)
        return values[0] if values else None
    return None


def _scrub_query_key(scope: Scope_) -> None:
    """Drop `xi_api_key` from a WebSocket's query string, in place: the server's log line for the
    connection is written from this same scope, so the key would otherwise land in the log.
    """
    query = scope.get("query_string", b"")
    if _QUERY_KEY.encode() not in query:
        return
    kept = [(k, v) for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k != _QUERY_KEY]
    scope["query_string"] = urlencode(kept).encode("latin-1")


def _is_open(path: str) -> bool:
    return path in _OPEN_PATHS or path == "/" or path.startswith(_OPEN_PREFIXES)


def required_scope(method: str, path: str) -> Scope | None:
    """None for open routes; `manage` to change voices; `speak` for everything else."""
    if _is_open(path):
        return None
    if path.startswith("/v1/voices") and method in {"POST", "DELETE", "PUT", "PATCH"}:
        return "manage"
    return "speak"


ADD_AUTHENTICATION = (
    "Create a key (`voxclone keys create --name me --scope manage`) or set VOXCLONE_API_KEYS (or "
    "VOXCLONE_OIDC_ISSUER for tokens), then send `Authorization: Bearer KEY`; or start the server with "
    "--allow-public to serve everyone without authentication"
)
NO_AUTH_THROUGH_PROXY = (
    "this server has no API keys, and this request came through a proxy or tunnel: anyone who can reach "
    f"the proxy could use it. {ADD_AUTHENTICATION}"
)


class AuthMiddleware:
    """Checks who the caller is and what they may do before any route runs, and stores the caller's
    identity for the rate limit. A caller is a key (`Authorization: Bearer`, `xi-api-key`), or a JWT
    from the configured issuer (`Cf-Access-Jwt-Assertion` or a bearer token). With neither keys nor an
    issuer configured nothing is checked, except that a request a proxy forwarded (any forwarding header)
    is refused unless `allow_public`: a tunnel on this machine must not open an unauthenticated server.
    """

    def __init__(
        self, app: ASGIApp, keys: KeyRing, tokens: TokenVerifier | None = None, allow_public: bool = False
    ) -> None:
        self.app = app
        self.keys = keys
        self.tokens = tokens
        self.allow_public = allow_public
        self._warned = False

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        if scope["type"] == "websocket":
            _scrub_query_key(scope)
        method = scope.get("method", "GET")
        needed = required_scope("GET" if scope["type"] == "websocket" else method, route_path(scope))
        if needed is None or method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if not self.keys.enabled and self.tokens is None:
            if not self.allow_public and forwarded(header_map(scope)):
                self._warn_once()
                await _refuse(scope, send, 403, "no_authentication", NO_AUTH_THROUGH_PROXY)
                return
            await self.app(scope, receive, send)
            return
        try:
            granted, caller = await self._identify(scope, key)
            if needed not in granted:
                raise Forbidden(f"this key or token may not {needed} voices; it needs the `{needed}` scope")
        except VoxcloneError as e:
            await _refuse(scope, send, status_for(e), e.code, str(e))
            return
        state = scope.setdefault("state", {})
        state["client_id"] = caller
        # for the audit log: the id `voxclone keys list` shows for a key, the token's subject otherwise
        state["key_id"] = caller[4:14] if caller.startswith("key:") else caller
        state["scopes"] = granted
        await self.app(scope, receive, send)

    async def _identify(self, scope: Scope_, key: str | None) -> tuple[tuple[Scope, ...], str]:
        """The caller's scopes and a non-secret id; raises Unauthorized when nothing valid was presented."""
        if key:
            scopes = self.keys.scopes(key)
            if scopes is not None:
                return scopes, "key:" + digest(key)[:16]
        if self.tokens is not None:
            token = header_map(scope).get("cf-access-jwt-assertion") or (key if key and looks_like_jwt(key) else None)
            if token:
                identity = await self.tokens.identify(token)
                return identity.scopes, identity.id
            raise Unauthorized(
                f"a valid API key or a token from {self.tokens.issuer} is required: send `Authorization: Bearer KEY` "
                "(or a JWT), `xi-api-key: KEY` or `Cf-Access-Jwt-Assertion`"
            )
        raise Unauthorized("a valid API key is required: send `Authorization: Bearer KEY` or `xi-api-key: KEY`")

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("refusing proxied requests (logged once): %s", NO_AUTH_THROUGH_PROXY)


async def _refuse(scope: Scope_, send: Send, status: int, code: str, message: str) -> None:
    if scope["type"] == "websocket":  # closed before the handshake: the client sees an HTTP 403
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await json_error(scope, send, status, code, message, {"WWW-Authenticate": "Bearer"} if status == 401 else None)


class RateLimit:
    """A moving-window request limit per key or token (or per client address without them), shared by
    the middleware that enforces it and the routes that report it (/v1/user/subscription). The address
    is the visitor's, as ProxyMiddleware resolved it, not the proxy's. Counted in this process, or, with
    `shared` set, in the library's database, for every process serving it (off the event loop).
    """

    def __init__(self, rate: str) -> None:
        self.item = parse_rate(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.shared: SharedWindows | None = None

    @staticmethod
    def client(scope: Scope_) -> str:
        return scope.get("state", {}).get("client_id") or "ip:" + (scope.get("client") or ("unknown", 0))[0]

    async def hit(self, scope: Scope_) -> bool:
        if self.shared is not None:
            client = self.client(scope)
            return self.shared.admit(client) or await anyio.to_thread.run_sync(self.shared.hit, client)
        return self.limiter.hit(self.item, self.client(scope))

    async def window(self, scope: Scope_) -> tuple[int, float]:
        """(requests this caller has left in the current window, when the window next frees one, unix)."""
        if self.shared is not None:
            return await anyio.to_thread.run_sync(self.shared.window, self.client(scope))
        stats = self.limiter.get_window_stats(self.item, self.client(scope))
        return stats.remaining, stats.reset_time


class RateLimitMiddleware:
    """Enforces a RateLimit on every route but the open ones; 429 with Retry-After."""

    def __init__(self, app: ASGIApp, rate: RateLimit) -> None:
        self.app = app
        self.rate = rate

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or _is_open(route_path(scope)):
            await self.app(scope, receive, send)
            return
        if not await self.rate.hit(scope):
            _, reset = await self.rate.window(scope)
            retry = max(1, math.ceil(reset - time.time()))
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "rate limit"})
                return
            await json_error(
                scope,
                send,
                429,
                "limit_exceeded",
                f"rate limit of {self.rate.item} reached; retry in {retry} s",
                {"Retry-After": str(retry)},
                limit="rate_limit",
            )
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes`: by Content-Length at once, and a chunked body (no
    Content-Length) by reading it up to the limit first, so the route never sees a partial upload.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = header_map(scope)
        message = f"request body is over the {self.max_bytes / 1024 / 1024:.0f} MB upload limit"
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await json_error(scope, send, 413, "limit_exceeded", message, limit="max_upload_bytes")
                return
            await self.app(scope, receive, send)
            return
        if "chunked" not in headers.get("transfer-encoding", ""):
            await self.app(scope, receive, send)
            return
        events, received = [], 0
        while True:
            event = await receive()
            events.append(event)
            received += len(event.get("body", b""))
            if received > self.max_bytes:
                await json_error(scope, send, 413, "limit_exceeded", message, limit="max_upload_bytes")
                return
            if event["type"] != "http.request" or not event.get("more_body"):
                break

        async def replay() -> MutableMapping[str, Any]:
            return events.pop(0) if events else await receive()

        await self.app(scope, replay, send)
