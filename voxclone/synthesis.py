"""Speech from text: resolve the voice, split the text, run the engine piece by piece, encode, cache.

This is the core the HTTP routes and the CLI call; it never touches HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import text as textlib
from .audio import OutputFormat, encode
from .cache import AudioCache, cache_key
from .engines.base import Engine
from .errors import BadInput, EngineUnavailable, LimitExceeded
from .metrics import Metrics
from .settings import Settings
from .voices import Voice, VoiceLibrary, install_voices
from .workers import default_workers

MIN_SPEED, MAX_SPEED = 0.25, 4.0
# Pause after a piece, by how it ends: sentences breathe longer than clauses.
_SENTENCE_PAUSE_S = 0.28
_CLAUSE_PAUSE_S = 0.12


@dataclass(frozen=True)
class SpeechRequest:
    """What to say, in which voice, how fast, in which format. Its normal form is the cache key."""

    text: str
    voice: str
    speed: float | None = None  # None: the voice's stored speed (1.0 unless set)
    format: OutputFormat = field(default_factory=lambda: OutputFormat("wav"))


@dataclass(frozen=True)
class Plan:
    """A request resolved against the library: the voice, its engine, the pieces, and the cache key."""

    voice: Voice
    engine: Engine
    pieces: tuple[str, ...]
    speed: float
    format: OutputFormat
    key: str

    @property
    def source_rate(self) -> int:
        return self.engine.sample_rate


def _pause(piece: str, rate: int, speed: float) -> np.ndarray:
    """Silence after a piece, by how it ends; none where a piece was cut between words."""
    end = piece.rstrip()[-1:]
    seconds = _SENTENCE_PAUSE_S if end in ".!?…" else _CLAUSE_PAUSE_S if end in ",;:—–" else 0.0
    return np.zeros(int(seconds / speed * rate), np.float32)


class Speaker:
    """The synthesis core shared by every front end."""

    def __init__(
        self,
        settings: Settings,
        engines: dict[str, Engine],
        library: VoiceLibrary,
        cache: AudioCache,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.engines = engines
        self.library = library
        self.cache = cache
        self.metrics = metrics or Metrics()

    @classmethod
    def from_settings(cls, settings: Settings) -> Speaker:
        """Engines, library (with stock and on-disk voices installed) and cache, as configured."""
        from .engines import build_engines

        engines = build_engines(settings)
        library = VoiceLibrary(settings.db_path, settings.voices_dir, settings.max_voices)
        install_voices(library, engines, settings.extra_voice_paths)
        return cls(settings, engines, library, AudioCache(settings.cache_dir, settings.cache_size_bytes))

    def useful_workers(self) -> int:
        """Synthesis threads worth running: one per core, or fewer where an engine runs calls one at a time."""
        return min([default_workers(), *(e.concurrent_calls for e in self.engines.values() if e.concurrent_calls)])

    def load(self) -> None:
        """Load every engine's models now (start-up) rather than on first use."""
        for engine in self.engines.values():
            engine.load()

    def plan(self, request: SpeechRequest, *, streamed: bool = False) -> Plan:
        """Validate and resolve a request; raises VoiceNotFound/VoiceNotReady/BadInput/LimitExceeded.

        A `streamed` plan starts with short pieces so the first audio comes soon (text.split's ramp).
        A whole file has no use for that: each sentence is one piece, so no phrase is cut in two
        (its intonation reset mid-phrase) and Kokoro runs fewer calls (RTF 0.233 -> 0.203 on
        bench/rtf.py's sentence). The two plans have different pieces, hence different cache keys.
        """
        if request.speed is not None and not MIN_SPEED <= request.speed <= MAX_SPEED:
            raise BadInput(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {request.speed}")
        if len(request.text) > self.settings.max_text_chars:
            raise LimitExceeded(
                f"text is {len(request.text)} characters; the limit is {self.settings.max_text_chars}",
                limit="max_text_chars",
            )
        pieces = tuple(textlib.split(request.text, ramp=streamed))
        if not pieces:
            raise BadInput("text has nothing speakable in it")
        voice = self.library.get(request.voice)
        voice.require_ready()
        speed = voice.speed if request.speed is None else request.speed
        engine = self.engines.get(voice.engine)
        if engine is None:
            raise EngineUnavailable(f"voice {voice.name!r} needs the {voice.engine} engine, which is not installed")
        key = cache_key(
            engine=voice.engine, voice=voice.id, version=voice.version, pieces=pieces,
            speed=round(speed, 3), format=request.format.cache_token(),
        )
        self.metrics.characters.inc(len(request.text))
        return Plan(voice, engine, pieces, speed, request.format, key)

    def piece_audio(self, plan: Plan, index: int) -> np.ndarray:
        """Audio of piece `index`, followed by its pause unless it is the last. Blocking."""
        piece = plan.pieces[index]
        started = time.perf_counter()
        audio = plan.engine.synthesize(piece, plan.voice.spec(), plan.speed)
        self.metrics.synthesis_seconds.labels(plan.engine.name).inc(time.perf_counter() - started)
        self.metrics.audio_seconds.labels(plan.engine.name).inc(audio.size / plan.source_rate)
        if index < len(plan.pieces) - 1:
            audio = np.concatenate([audio, _pause(piece, plan.source_rate, plan.speed)])
        return audio

    def pieces_audio(self, plan: Plan) -> Iterator[np.ndarray]:
        """Audio of each piece in order (see `piece_audio`)."""
        for index in range(len(plan.pieces)):
            yield self.piece_audio(plan, index)

    def cached(self, plan: Plan) -> bytes | None:
        body = self.cache.get(plan.key)
        (self.metrics.cache_hits if body is not None else self.metrics.cache_misses).inc()
        return body

    def render(self, plan: Plan, *, bypass_cache: bool = False) -> bytes:
        """The whole clip, encoded; from the cache unless bypassed. Blocking: call from a worker thread."""
        if not bypass_cache:
            body = self.cached(plan)
            if body is not None:
                return body
        audio = np.concatenate(list(self.pieces_audio(plan)))
        body = encode(audio, plan.source_rate, plan.format)
        self.cache.put(plan.key, body, voice_id=plan.voice.id)
        return body

    def say_to_file(self, request: SpeechRequest, path: Path) -> float:
        """Synthesise into a file (format from the request); returns seconds of audio. For the CLI."""
        plan = self.plan(request)
        audio = np.concatenate(list(self.pieces_audio(plan)))
        body = encode(audio, plan.source_rate, plan.format)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(body)
        tmp.replace(path)
        return audio.size / plan.source_rate

