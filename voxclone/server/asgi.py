"""What voxclone's own ASGI middlewares share: the ASGI types, headers as a dict, a JSON error reply,
and the path as routes see it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import error_body, speaks_openai

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]


def header_map(scope: Scope_) -> dict[str, str]:
    """Request headers by lower-case name; a repeated header's values joined with ", " in order, as
    HTTP defines them (so a second X-Forwarded-For line extends the first instead of hiding it).
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def json_error(
    scope: Scope_, send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> None:
    """An error answered before any route runs, in the shape the route's clients read (server/errors.py)."""
    openai = speaks_openai(route_path(scope), header_map(scope))
    body = json.dumps(error_body(openai, status, code, message, **extra)).encode()
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
