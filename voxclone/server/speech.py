"""Speech routes: the original /speak_as, OpenAI's /v1/audio/speech, ElevenLabs' /v1/text-to-speech."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..audio import OutputFormat
from ..errors import VoiceNotFound
from ..streaming import Streamer
from ..synthesis import MAX_SPEED, MIN_SPEED, Speaker, SpeechRequest
from ..workers import WorkerPool
from . import deps
from .schemas import ElevenLabsSpeech, OpenAISpeech
from .streaming import audio_response, sse_response

router = APIRouter(tags=["speech"])

# OpenAI clients send OpenAI's voice names; they map to our stock voices unless a voice of that name exists.
OPENAI_VOICES = {
    "alloy": "jf_alpha", "ash": "jm_kumo", "ballad": "jm_kumo", "coral": "jf_tebukuro", "echo": "jm_kumo",
    "fable": "jf_gongitsune", "nova": "jf_nezumi", "onyx": "jm_kumo", "sage": "jf_tebukuro",
    "shimmer": "jf_nezumi", "verse": "jm_kumo",
}


async def _speak(speaker: Speaker, workers: WorkerPool, request: SpeechRequest, *, bypass_cache: bool = False) -> Response:
    plan = speaker.plan(request)
    body = None if bypass_cache else speaker.cached(plan)  # a hit is answered without a worker thread
    if body is None:
        body = await workers.run(lambda: speaker.render(plan, bypass_cache=True), key=None if bypass_cache else plan.key)
    return Response(body, media_type=plan.format.content_type, headers={"X-Voice-Id": plan.voice.id})


@router.get("/speak_as/{voice}", summary="Speak a prompt as a voice (the original API); returns WAV")
async def speak_as(
    voice: str,
    prompt: Annotated[str, Query(min_length=1, description="Text to speak")],
    speaker: Annotated[Speaker, Depends(deps.speaker)],
    workers: Annotated[WorkerPool, Depends(deps.workers)],
    speed: Annotated[float | None, Query(ge=MIN_SPEED, le=MAX_SPEED, description="Default: the voice's stored speed")] = None,
    bypass_cache: bool = False,
    text_temp: Annotated[float | None, Query(ge=0, le=2, description="Accepted for compatibility; no effect")] = None,
    waveform_temp: Annotated[float | None, Query(ge=0, le=2, description="Accepted for compatibility; no effect")] = None,
) -> Response:
    request = SpeechRequest(text=prompt, voice=voice, speed=speed, format=OutputFormat("wav"))
    return await _speak(speaker, workers, request, bypass_cache=bypass_cache)


def openai_voice(speaker: Speaker, name: str) -> str:
    """An OpenAI voice name maps to a stock voice, unless the library has a voice by that name."""
    if name.lower() in OPENAI_VOICES:
        try:
            speaker.library.get(name)
        except VoiceNotFound:
            return OPENAI_VOICES[name.lower()]
    return name


@router.post("/v1/audio/speech", summary="OpenAI-compatible text to speech (whole file, or streamed)")
async def openai_speech(
    body: OpenAISpeech,
    speaker: Annotated[Speaker, Depends(deps.speaker)],
    workers: Annotated[WorkerPool, Depends(deps.workers)],
    streamer: Annotated[Streamer, Depends(deps.streamer)],
) -> Response:
    request = SpeechRequest(
        text=body.input, voice=openai_voice(speaker, body.voice), speed=body.speed, format=OutputFormat(body.response_format)
    )
    if body.stream_format == "sse":
        return sse_response(streamer.open(speaker.plan(request, streamed=True)))
    if body.stream:
        return audio_response(streamer.open(speaker.plan(request, streamed=True)))
    return await _speak(speaker, workers, request)


@router.post("/v1/text-to-speech/{voice_id}", summary="ElevenLabs-compatible text to speech")
async def elevenlabs_speech(
    voice_id: str,
    body: ElevenLabsSpeech,
    speaker: Annotated[Speaker, Depends(deps.speaker)],
    workers: Annotated[WorkerPool, Depends(deps.workers)],
    output_format: Annotated[str, Query(max_length=32)] = "mp3_44100_128",
) -> Response:
    return await _speak(speaker, workers, body.speech_request(voice_id, output_format))
