"""Exposure controls, one ASGI middleware each concern: API keys and scopes, request rate, body size,
and the CORS allow-list (Starlette's CORSMiddleware fed a checked origin pattern).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

from limits import parse as parse_rate
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..auth import KeyRing, Scope, digest
from .errors import error_body

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]

# Open without a key: the page and its assets, health, and the API description.
_OPEN_PATHS = ("/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/favicon.ico")
_OPEN_PREFIXES = ("/web/",)
_WILDCARD_ORIGIN = re.compile(r"^(https?)://\*\.((?:[a-z0-9-]+\.)+[a-z0-9-]+)(:\d{1,5})?$")
_QUERY_KEY = "xi_api_key"  # browsers cannot set headers on a WebSocket, so it may come in the URL
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


async def _json_error(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
    body = json.dumps(error_body(code, message, **extra)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope_) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def presented_key(scope: Scope_) -> str | None:
    """The key from `Authorization: Bearer`, `xi-api-key`, or (WebSocket only) `?xi_api_key=`."""
    headers = _headers(scope)
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if "xi-api-key" in headers:
        return headers["xi-api-key"].strip()
    if scope["type"] == "websocket":
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


def required_scope(method: str, path: str) -> Scope | None:
    """None for open routes; `manage` to change voices; `speak` for everything else."""
    if path in _OPEN_PATHS or path == "/" or path.startswith(_OPEN_PREFIXES):
        return None
    if path.startswith("/v1/voices") and method in {"POST", "DELETE", "PUT", "PATCH"}:
        return "manage"
    return "speak"


class AuthMiddleware:
    """Checks keys and scopes before any route runs; stores the caller's identity for rate limiting."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        if scope["type"] == "websocket":
            _scrub_query_key(scope)
        method = scope.get("method", "GET")
        needed = required_scope("GET" if scope["type"] == "websocket" else method, scope["path"])
        if needed is None or method == "OPTIONS" or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        granted = self.keys.scopes(key) if key else None
        if granted is None:
            await self._refuse(scope, receive, send, 401, "unauthorized", "a valid API key is required: send `Authorization: Bearer KEY` or `xi-api-key: KEY`")
            return
        if needed not in granted:
            await self._refuse(scope, receive, send, 403, "forbidden", f"this key may not {needed} voices; it needs the `{needed}` scope")
            return
        state = scope.setdefault("state", {})
        state["client_id"] = "key:" + digest(key or "")[:16]
        state["key_id"] = digest(key or "")[:10]  # the id `voxclone keys list` shows, for the audit log
        state["scopes"] = granted
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope_, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        await _json_error(send, status, code, message, {"WWW-Authenticate": "Bearer"} if status == 401 else None)


class RateLimitMiddleware:
    """A moving-window request limit per key (or per client IP without keys); 429 with Retry-After."""

    def __init__(self, app: ASGIApp, rate: str) -> None:
        self.app = app
        self.rate = parse_rate(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in _OPEN_PATHS or scope["path"] == "/" or scope["path"].startswith(_OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        client = scope.get("state", {}).get("client_id") or "ip:" + (scope.get("client") or ("unknown", 0))[0]
        if not self.limiter.hit(self.rate, client):
            reset, _ = self.limiter.get_window_stats(self.rate, client)
            retry = max(1, math.ceil(reset - time.time()))
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "rate limit"})
                return
            await _json_error(send, 429, "limit_exceeded", f"rate limit of {self.rate} reached; retry in {retry} s", {"Retry-After": str(retry)}, limit="rate_limit")
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
        headers = _headers(scope)
        message = f"request body is over the {self.max_bytes / 1024 / 1024:.0f} MB upload limit"
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await _json_error(send, 413, "limit_exceeded", message, limit="max_upload_bytes")
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
                await _json_error(send, 413, "limit_exceeded", message, limit="max_upload_bytes")
                return
            if event["type"] != "http.request" or not event.get("more_body"):
                break

        async def replay() -> MutableMapping[str, Any]:
            return events.pop(0) if events else await receive()

        await self.app(scope, replay, send)
