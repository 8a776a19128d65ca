"""What routes receive through FastAPI dependencies: the app's core services, built once in create_app."""

from __future__ import annotations

from fastapi import Request

from ..enrolment import Enroller
from ..revoice import Revoicer
from ..runtime import Runtime
from ..settings import Settings
from ..speech import SpeechService
from ..timestamps import TimedSpeech
from ..transcription import TranscriptionService
from ..voices import VoiceLibrary


def runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def speech(request: Request) -> SpeechService:
    return runtime(request).speech


def settings(request: Request) -> Settings:
    return runtime(request).settings


def library(request: Request) -> VoiceLibrary:
    return runtime(request).library


def enroller(request: Request) -> Enroller:
    return runtime(request).enroller


def transcription(request: Request) -> TranscriptionService:
    return runtime(request).transcription


def timed(request: Request) -> TimedSpeech:
    return runtime(request).timed


def revoicer(request: Request) -> Revoicer:
    return runtime(request).revoicer
