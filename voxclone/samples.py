"""A voice's reference recordings, in its blob store: `samples/<id>.wav` with `samples/<id>.json` beside it.

Audio is written first and its metadata last, so a sample is listed only once both are complete.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from typing import Any

import soundfile

from .audio import REFERENCE_RATE
from .blobs import SAMPLES, BlobStore
from .cloning import Reference
from .cloning.prepare import Sample


def list_samples(blobs: BlobStore, voice_id: str) -> list[dict[str, Any]]:
    """The stored samples of a voice: id, original file name, seconds of speech, transcript."""
    names = set(blobs.names(voice_id, SAMPLES))
    out = []
    for name in sorted(names):
        if name.endswith(".json") and name.removesuffix(".json") + ".wav" in names:
            meta = blobs.get(voice_id, name)
            if meta is not None:
                out.append(json.loads(meta))
    return out


def sample_audio(blobs: BlobStore, voice_id: str, sample_id: str) -> bytes | None:
    """The WAV of one stored sample, or None if the voice has no such sample."""
    if not sample_id.replace("-", "").isalnum():
        return None
    return blobs.get(voice_id, f"{SAMPLES}{sample_id}.wav")


def store(blobs: BlobStore, voice_id: str, sample: Sample) -> None:
    sample_id = f"{int(time.time() * 1000):013d}-{secrets.token_hex(3)}"
    wav = io.BytesIO()
    soundfile.write(wav, sample.audio, REFERENCE_RATE, format="WAV", subtype="PCM_16")
    info = {
        "sample_id": sample_id,
        "file_name": sample.file_name[:200],
        "duration_s": round(sample.speech_seconds, 2),
        "transcript": sample.transcript,
    }
    blobs.put(
        voice_id, {f"{SAMPLES}{sample_id}.wav": wav.getvalue(), f"{SAMPLES}{sample_id}.json": json.dumps(info).encode()}
    )


def load_references(blobs: BlobStore, voice_id: str) -> list[Reference]:
    refs = []
    for info in list_samples(blobs, voice_id):
        data = sample_audio(blobs, voice_id, info["sample_id"])
        if data is None:
            continue
        audio, rate = soundfile.read(io.BytesIO(data), dtype="float32")
        refs.append(Reference(audio=audio, sample_rate=rate, transcript=info.get("transcript")))
    return refs
