"""What routes receive through FastAPI dependencies: the app's core services, built once in create_app."""

from __future__ import annotations

from fastapi import Request

from ..auth import KeyRing
from ..consent import Actor
from ..enrolment import Enroller
from ..errors import Forbidden
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


def _keys_on(request: Request) -> bool:
    keys: KeyRing | None = getattr(request.app.state, "keys", None)
    return keys is not None and keys.enabled


def actor(request: Request) -> Actor:
    """Who is asking: the key's id (for the audit log) and whether keys are on (a public server)."""
    return Actor(key_id=getattr(request.state, "key_id", None), keys_on=_keys_on(request))


def can_manage(request: Request) -> bool:
    """Whether the caller may manage voices: any caller with keys off, else a key with the `manage` scope."""
    return not _keys_on(request) or "manage" in getattr(request.state, "scopes", ())


def manager(request: Request) -> Actor:
    """The caller, who must be allowed to manage voices (403 otherwise)."""
    if not can_manage(request):
        raise Forbidden("this key may not manage voices; it needs the `manage` scope")
    return actor(request)
