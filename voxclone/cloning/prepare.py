"""Turn uploaded recordings into clean references: decode, check, trim to speech with a VAD, level.

Every check says what to fix, so a person can re-record rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm

from ..audio import REFERENCE_RATE, decode
from ..errors import BadAudio
from ..vad import speech_mask

_CLIPPED_FRACTION = 0.01
_SILENT_RMS = 1e-3
TARGET_LUFS = -23.0


@dataclass(frozen=True)
class Sample:
    """One prepared recording: speech only, loudness-normalised, mono at REFERENCE_RATE."""

    audio: np.ndarray
    file_name: str
    speech_seconds: float
    transcript: str | None = None


def normalise_loudness(audio: np.ndarray, rate: int) -> np.ndarray:
    meter = pyloudnorm.Meter(rate)
    loudness = meter.integrated_loudness(audio.astype(np.float64))
    if not np.isfinite(loudness):
        return audio
    gain = 10 ** ((TARGET_LUFS - loudness) / 20)
    return np.clip(audio * gain, -1.0, 1.0).astype(np.float32)


def prepare(data: bytes, file_name: str, *, max_seconds: float, transcript: str | None = None) -> Sample:
    """One uploaded file -> a clean Sample; BadAudio/LimitExceeded with a message that says what to fix."""
    try:
        audio = decode(data, target_rate=REFERENCE_RATE, max_seconds=max_seconds)
    except BadAudio as e:
        raise BadAudio(f"{file_name}: {e}") from e
    if float(np.sqrt(np.mean(audio**2))) < _SILENT_RMS:
        raise BadAudio(f"{file_name} is silent; check the microphone and record again")
    clipped = float(np.mean(np.abs(audio) >= 0.999))
    if clipped > _CLIPPED_FRACTION:
        raise BadAudio(
            f"{file_name} is clipped ({clipped:.1%} of samples at full scale); record again with lower input gain"
        )
    mask = speech_mask(audio, REFERENCE_RATE)
    speech = audio[mask]
    if speech.size == 0:
        raise BadAudio(f"{file_name} holds no speech that the voice detector could hear; record someone speaking")
    return Sample(
        audio=normalise_loudness(speech, REFERENCE_RATE),
        file_name=file_name,
        speech_seconds=speech.size / REFERENCE_RATE,
        transcript=(transcript or "").strip() or None,
    )


def check_total(samples: list[Sample], min_speech_seconds: float) -> None:
    total = sum(s.speech_seconds for s in samples)
    if total < min_speech_seconds:
        raise BadAudio(
            f"the recordings hold {total:.1f} s of speech; at least {min_speech_seconds:.0f} s are needed "
            "(20-30 s gives the best clone)"
        )
