"""What routes receive through FastAPI dependencies: the app's core services, built once in create_app."""

from __future__ import annotations

from fastapi import Request

from ..enrolment import Enroller
from ..runtime import Runtime
from ..settings import Settings
from ..speech import SpeechService
from ..voices import VoiceLibrary


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def speech(request: Request) -> SpeechService:
    return runtime(request).speech


def settings(request: Request) -> Settings:
    return runtime(request).settings


def library(request: Request) -> VoiceLibrary:
    return runtime(request).library


def enroller(request: Request) -> Enroller:
    return runtime(request).enroller
