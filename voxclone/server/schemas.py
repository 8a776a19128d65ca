"""Request bodies of the speech APIs, in the shapes OpenAI's and ElevenLabs' clients send."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..audio import parse_elevenlabs_format
from ..speech import MAX_SPEED, MIN_SPEED, SpeechRequest


class OpenAISpeech(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field("tts-1", max_length=100, description="Accepted for compatibility (tts-1, gpt-4o-mini-tts, ...)")
    input: str = Field(..., min_length=1)
    voice: str = Field(..., min_length=1, max_length=200)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float | None = Field(
        None, ge=MIN_SPEED, le=MAX_SPEED, description="Default: the voice's stored speed (1.0 unless set)"
    )
    instructions: str | None = Field(None, max_length=4096, description="Accepted; not used by these engines")
    stream: bool = Field(False, description="Send audio as it is synthesised (chunked), first clause first")
    stream_format: Literal["audio", "sse"] = Field(
        "audio", description="With `sse`, a text/event-stream of base64 `speech.audio.delta` events (implies streaming)"
    )


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stability: float | None = Field(None, ge=0, le=1)
    similarity_boost: float | None = Field(None, ge=0, le=1)
    style: float | None = Field(None, ge=0, le=1)
    use_speaker_boost: bool | None = None
    speed: float | None = Field(None, ge=MIN_SPEED, le=MAX_SPEED)


# ElevenLabs' defaults. Only `speed` changes how voxclone speaks; the rest are stored and returned
# for clients that read them back (the engines here have no stability or style controls).
DEFAULT_VOICE_SETTINGS = VoiceSettings(
    stability=0.5, similarity_boost=0.75, style=0.0, use_speaker_boost=True, speed=1.0
)


def voice_settings(stored: dict[str, object]) -> dict[str, object]:
    """A voice's settings as clients read them: what it stores, over the defaults."""
    return {**DEFAULT_VOICE_SETTINGS.model_dump(), **stored}


class ElevenLabsSpeech(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(..., min_length=1)
    model_id: str | None = Field(None, max_length=100)
    voice_settings: VoiceSettings | None = None
    seed: int | None = Field(None, ge=0, le=4294967295)
    language_code: str | None = Field(None, max_length=16)

    def speech_request(self, voice_id: str, output_format: str) -> SpeechRequest:
        """The request this body asks for, in `output_format` (ElevenLabs' `mp3_44100_128` style)."""
        speed = self.voice_settings.speed if self.voice_settings else None  # None: the voice's stored speed
        return SpeechRequest(text=self.text, voice=voice_id, speed=speed, format=parse_elevenlabs_format(output_format))
