"""A voice's reference recordings, as stored in its folder: `samples/<id>.wav` with `<id>.json` beside it.

Audio is written first and its metadata last, so a sample is listed only once both are complete.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from pathlib import Path
from typing import Any

import soundfile

from .audio import REFERENCE_RATE
from .cloning import Reference
from .cloning.prepare import Sample
from .files import atomic_write


def samples_dir(folder: Path) -> Path:
    return folder / "samples"


def list_samples(folder: Path | None) -> list[dict[str, Any]]:
    """The stored samples of a voice: id, original file name, seconds of speech, transcript."""
    if folder is None or not samples_dir(folder).is_dir():
        return []
    out = []
    for meta in sorted(samples_dir(folder).glob("*.json")):
        info = json.loads(meta.read_text())
        if meta.with_suffix(".wav").exists():
            out.append(info)
    return out


def sample_path(folder: Path | None, sample_id: str) -> Path | None:
    """The WAV of one stored sample, or None if the voice has no such sample."""
    if folder is None or not sample_id.replace("-", "").isalnum():
        return None
    path = samples_dir(folder) / f"{sample_id}.wav"
    return path if path.is_file() else None


def store(folder: Path, sample: Sample) -> None:
    directory = samples_dir(folder)
    directory.mkdir(parents=True, exist_ok=True)
    sample_id = f"{int(time.time() * 1000):013d}-{secrets.token_hex(3)}"
    wav = io.BytesIO()
    soundfile.write(wav, sample.audio, REFERENCE_RATE, format="WAV", subtype="PCM_16")
    atomic_write(directory / f"{sample_id}.wav", wav.getvalue())
    info = {"sample_id": sample_id, "file_name": sample.file_name[:200], "duration_s": round(sample.speech_seconds, 2),
            "transcript": sample.transcript}
    atomic_write(directory / f"{sample_id}.json", json.dumps(info).encode())


def load_references(folder: Path) -> list[Reference]:
    refs = []
    for info in list_samples(folder):
        audio, rate = soundfile.read(samples_dir(folder) / f"{info['sample_id']}.wav", dtype="float32")
        refs.append(Reference(audio=audio, sample_rate=rate, transcript=info.get("transcript")))
    return refs
