"""What voxclone's own ASGI middlewares share: the ASGI types, headers as a dict, a JSON error reply,
and the path as routes see it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import error_body

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]


def header_map(scope: Scope_) -> dict[str, str]:
    """Request headers by lower-case name (a repeated header keeps its last value)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def json_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> None:
    body = json.dumps(error_body(code, message, **extra)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def route_path(scope: Scope_) -> str:
    """The path as the app's routes see it: without the root path the server is served under."""
    root, path = scope.get("root_path", ""), scope["path"]
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path
