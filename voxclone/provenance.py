"""Provenance: every piece of speech this server makes carries its mark, and any audio can be asked
whether it carries one, and if this installation made it, which voice and on which day.

The payload is not written as bits but as a codeword: the product of three keyed sequences, one for
this installation (a random id made once in the data dir, never shown), one for the voice id, one
for the day (UTC). Only this installation can tell its own codewords from chance, and it reads them by
trying every voice it has known (the library, and deleted voices from the audit log) on every day
since it was installed, so a payload never needs error-correction bits of its own.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

from . import watermark
from .audio import ANALYSIS_RATE, decode
from .audit import AuditLog
from .engines import AudioChunk
from .voices import VoiceLibrary

log = logging.getLogger("voxclone.provenance")
DAY_S = 86_400
MAX_DETECT_SECONDS = 600.0
_IDENTIFY_FALSE_MATCH = 1e-4  # chance that unmarked-by-us audio names one of our voices, over every candidate


def installation_id(data_dir: Path) -> str:
    """This installation's random id, made once (atomically: two processes starting together agree)."""
    path = data_dir / "installation.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"installation_id": secrets.token_hex(16), "created_at_unix": round(time.time())}).encode()
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(record)
        try:
            path.hardlink_to(tmp)  # fails if another process got there first; its id wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return str(json.loads(path.read_text())["installation_id"])


def _created_day(data_dir: Path) -> int:
    try:
        return int(json.loads((data_dir / "installation.json").read_text())["created_at_unix"]) // DAY_S
    except (OSError, ValueError, KeyError):
        return int(time.time()) // DAY_S


@dataclass(frozen=True)
class Detection:
    """The answer to "was this made by voxclone?" for one file."""

    watermarked: bool
    confidence: float  # 1 - the chance that unmarked audio would score this high
    score: float
    threshold: float
    seconds: float
    voice_id: str | None = None
    voice_name: str | None = None
    day: str | None = None  # YYYY-MM-DD (UTC), when this installation made it
    match_score: float | None = None

    def json(self) -> dict[str, Any]:
        made_here = self.voice_id is not None
        return {
            "watermarked": self.watermarked,
            "confidence": round(self.confidence, 6),
            "score": round(self.score, 2),
            "threshold": round(self.threshold, 2),
            "seconds": round(self.seconds, 2),
            "made_here": made_here,
            "voice_id": self.voice_id,
            "voice_name": self.voice_name,
            "made_on": self.day,
            "match_score": None if self.match_score is None else round(self.match_score, 2),
        }


class Provenance:
    """Marks pieces of speech and reads marks back, for one installation."""

    def __init__(
        self, data_dir: Path, library: VoiceLibrary, audit: AuditLog, scheme: watermark.Scheme = watermark.DEFAULT
    ) -> None:
        self.data_dir = data_dir
        self.library = library
        self.audit = audit
        self.scheme = scheme
        self.installation = installation_id(data_dir)
        self._installation_sequence = scheme.sequence("installation", self.installation)

    def codeword(self, voice_id: str, day: int) -> np.ndarray:
        return (
            self._installation_sequence
            * self.scheme.sequence("voice", voice_id)
            * self.scheme.sequence("day", str(day))
        )

    def mark(self, chunk: AudioChunk, voice_id: str, now: float | None = None) -> AudioChunk:
        """The chunk with its mark: this installation, `voice_id`, today. Blocking (a few ms per second)."""
        day = int(time.time() if now is None else now) // DAY_S
        samples = watermark.embed(chunk.samples, chunk.sample_rate, self.codeword(voice_id, day), self.scheme)
        return AudioChunk(samples, chunk.sample_rate, chunk.text, chunk.words)

    def detect(self, data: bytes) -> Detection:
        """Read an uploaded file (any format FFmpeg decodes). Blocking; BadAudio if it cannot be decoded."""
        audio = decode(data, target_rate=ANALYSIS_RATE, max_seconds=MAX_DETECT_SECONDS)
        return self.detect_audio(audio, ANALYSIS_RATE)

    def detect_audio(self, samples: np.ndarray, rate: int) -> Detection:
        reading = watermark.read(samples, rate, self.scheme)
        detection = Detection(
            watermarked=reading.watermarked,
            confidence=1.0 - reading.false_positive_chance,
            score=reading.z,
            threshold=reading.threshold,
            seconds=reading.seconds,
        )
        if not reading.watermarked:
            return detection
        return self._identify(reading, detection)

    def _identify(self, reading: watermark.Reading, detection: Detection) -> Detection:
        """Which of this installation's voices, on which day: the best codeword, if it stands out."""
        names = {v.id: v.name for v in self.library.all()}
        voice_ids = sorted(set(names) | self.audit.voice_ids())
        today = int(time.time()) // DAY_S
        days = np.arange(_created_day(self.data_dir) - 1, today + 2)
        if not voice_ids:
            return detection
        mixed = reading.message * self._installation_sequence
        voices = np.stack([self.scheme.sequence("voice", v) for v in voice_ids]) * mixed
        day_sequences = np.stack([self.scheme.sequence("day", str(int(d))) for d in days])
        norm = float(np.linalg.norm(reading.message)) or 1.0
        scores = (voices @ day_sequences.T) / norm  # (voices, days): standard normal for a wrong pair
        best = np.unravel_index(int(np.argmax(scores)), scores.shape)
        score = float(scores[best])
        needed = float(-ndtri(_IDENTIFY_FALSE_MATCH / scores.size))
        if score < needed:
            return detection
        voice_id = voice_ids[int(best[0])]
        day = time.strftime("%Y-%m-%d", time.gmtime(int(days[int(best[1])]) * DAY_S))
        return Detection(
            **{
                **detection.__dict__,
                "voice_id": voice_id,
                "voice_name": names.get(voice_id),
                "day": day,
                "match_score": score,
            }
        )
