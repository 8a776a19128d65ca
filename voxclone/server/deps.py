"""What routes receive through FastAPI dependencies: the app's core objects, set once in create_app."""

from __future__ import annotations

from fastapi import Request

from ..settings import Settings
from ..streaming import Streamer
from ..synthesis import Speaker
from ..workers import WorkerPool


def speaker(request: Request) -> Speaker:
    return request.app.state.speaker  # type: ignore[no-any-return]


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def workers(request: Request) -> WorkerPool:
    return request.app.state.workers  # type: ignore[no-any-return]


def streamer(request: Request) -> Streamer:
    return request.app.state.streamer  # type: ignore[no-any-return]
