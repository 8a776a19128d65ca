"""Speech routes: the original /speak_as, OpenAI's /v1/audio/speech, ElevenLabs' /v1/text-to-speech."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..audio import OutputFormat
from ..errors import VoiceNotFound
from ..speech import MAX_SPEED, MIN_SPEED, Clip, SpeechRequest, SpeechService
from . import deps
from .schemas import ElevenLabsSpeech, OpenAISpeech
from .streaming import audio_response, sse_response

router = APIRouter(tags=["speech"])

# OpenAI clients send OpenAI's voice names; they map to our stock voices unless a voice of that name exists.
OPENAI_VOICES = {
    "alloy": "jf_alpha",
    "ash": "jm_kumo",
    "ballad": "jm_kumo",
    "coral": "jf_tebukuro",
    "echo": "jm_kumo",
    "fable": "jf_gongitsune",
    "nova": "jf_nezumi",
    "onyx": "jm_kumo",
    "sage": "jf_tebukuro",
    "shimmer": "jf_nezumi",
    "verse": "jm_kumo",
}


def _clip_response(clip: Clip) -> Response:
    return Response(clip.body, media_type=clip.content_type, headers={"X-Voice-Id": clip.voice_id})


@router.get("/speak_as/{voice}", summary="Speak a prompt as a voice (the original API); returns WAV")
async def speak_as(
    voice: str,
    prompt: Annotated[str, Query(min_length=1, description="Text to speak")],
    speech: Annotated[SpeechService, Depends(deps.speech)],
    speed: Annotated[
        float | None, Query(ge=MIN_SPEED, le=MAX_SPEED, description="Default: the voice's stored speed")
    ] = None,
    bypass_cache: bool = False,
    text_temp: Annotated[float | None, Query(ge=0, le=2, description="Accepted for compatibility; no effect")] = None,
    waveform_temp: Annotated[
        float | None, Query(ge=0, le=2, description="Accepted for compatibility; no effect")
    ] = None,
) -> Response:
    request = SpeechRequest(text=prompt, voice=voice, speed=speed, format=OutputFormat("wav"))
    return _clip_response(await speech.clip(request, bypass_cache=bypass_cache))


def openai_voice(speech: SpeechService, name: str) -> str:
    """An OpenAI voice name maps to a stock voice, unless the library has a voice by that name."""
    if name.lower() in OPENAI_VOICES:
        try:
            speech.library.get(name)
        except VoiceNotFound:
            return OPENAI_VOICES[name.lower()]
    return name


@router.post("/v1/audio/speech", summary="OpenAI-compatible text to speech (whole file, or streamed)")
async def openai_speech(body: OpenAISpeech, speech: Annotated[SpeechService, Depends(deps.speech)]) -> Response:
    request = SpeechRequest(
        text=body.input,
        voice=openai_voice(speech, body.voice),
        speed=body.speed,
        format=OutputFormat(body.response_format),
    )
    if body.stream_format == "sse":
        return sse_response(await speech.stream(request))
    if body.stream:
        return await audio_response(await speech.stream(request))
    return _clip_response(await speech.clip(request))


@router.post("/v1/text-to-speech/{voice_id}", summary="ElevenLabs-compatible text to speech")
async def elevenlabs_speech(
    voice_id: str,
    body: ElevenLabsSpeech,
    speech: Annotated[SpeechService, Depends(deps.speech)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
) -> Response:
    return _clip_response(await speech.clip(body.speech_request(voice_id, output_format)))
