"""The transcription service: uploads and live audio in, transcripts out, off the event loop.

Whisper runs on its own bounded pool of threads (settings.transcription_workers, with
settings.transcription_queue waiting; beyond that a new upload gets Busy), so a long upload never
holds a synthesis worker and speech never waits behind a transcription. Realtime turns are not
admitted one by one (their conversation was admitted when it opened) and go first: the pool starts
waiting jobs earliest deadline first, and a turn is needed now.

Transcripts are written out here too (json, text, srt, vtt, verbose_json), once, for the HTTP route
and the CLI alike.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .asr import Segment, TranscribeOptions, Transcriber, Transcript, check_language, resolve_model
from .audio import ANALYSIS_RATE, decode, resample
from .errors import BadAudio, BadInput, Busy, LimitExceeded
from .listeners import Listeners
from .settings import Settings
from .workers import WorkerPool

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
# An upload's work can wait this long behind realtime turns that arrive meanwhile.
_UPLOAD_SLACK_S = 2.0


@dataclass(frozen=True)
class Rendered:
    body: str
    content_type: str


class TranscriptionService:
    """Every way of turning speech into text, over one bounded pool of Whisper threads."""

    def __init__(self, settings: Settings, listeners: Listeners) -> None:
        self.settings = settings
        self.listeners = listeners
        self.pool = WorkerPool(settings.transcription_workers, settings.transcription_queue, name="voxclone-asr")
        self._admitted = 0

    def model(self, requested: str | None) -> str:
        """The Whisper model a request names; OpenAI's `whisper-1` is the configured default."""
        return resolve_model(requested, self.settings.transcription_model)

    def _admit(self) -> None:
        if self._admitted >= self.pool.capacity:
            raise Busy(
                f"the server is busy ({self._admitted} transcriptions in progress); retry shortly", retry_after=2.0
            )
        self._admitted += 1

    def _release(self) -> None:
        self._admitted -= 1

    async def decode(self, data: bytes, *, pcm_rate: int | None = None) -> np.ndarray:
        """An upload in any format the cloning path accepts (or raw 16-bit PCM at `pcm_rate`), as 16 kHz
        mono; the same duration limit."""
        limit = self.settings.max_upload_seconds
        if pcm_rate is not None:
            if len(data) < 2 or len(data) / 2 / pcm_rate > limit:
                raise (
                    BadAudio("the audio is empty")
                    if len(data) < 2
                    else LimitExceeded(f"audio is longer than the {limit:.0f} s limit", limit="max_upload_seconds")
                )
            pcm = np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
            return resample(pcm, pcm_rate, ANALYSIS_RATE)
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: decode(data, target_rate=ANALYSIS_RATE, max_seconds=limit)
        )

    async def transcribe(self, audio16k: np.ndarray, model: str, options: TranscribeOptions) -> Transcript:
        """The whole transcript of 16 kHz audio (admitted: Busy when every place is taken)."""
        check_language(model, options.language)
        transcriber = self.listeners.transcriber_for(model)
        deadline = asyncio.get_running_loop().time() + _UPLOAD_SLACK_S
        self._admit()
        try:
            return await self.pool.run(
                lambda: transcriber.transcript(audio16k, ANALYSIS_RATE, options), deadline=deadline
            )
        finally:
            self._release()

    def stream(self, audio16k: np.ndarray, model: str, options: TranscribeOptions) -> AsyncIterator[Segment]:
        """Segments as they are decoded; a reader that stops early stops the decoding after its segment.

        Admitted now (Busy if full), so a stream that starts never fails for lack of a place; read it
        to the end or close it, which gives the place back.
        """
        check_language(model, options.language)
        transcriber = self.listeners.transcriber_for(model)
        self._admit()
        return self._segments(transcriber, audio16k, options)

    async def _segments(
        self, transcriber: Transcriber, audio16k: np.ndarray, options: TranscribeOptions
    ) -> AsyncIterator[Segment]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Segment | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                for segment in transcriber.segments(audio16k, ANALYSIS_RATE, options):
                    loop.call_soon_threadsafe(queue.put_nowait, segment)
                    if stop.is_set():
                        break
            except BaseException as error:  # handed to the reader, who raises it
                loop.call_soon_threadsafe(queue.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        job = asyncio.ensure_future(self.pool.run(work, deadline=loop.time() + _UPLOAD_SLACK_S))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
            await job
        finally:
            stop.set()
            if not job.done():
                job.cancel()  # not started yet: never starts; running: stops after its segment
            self._release()

    async def quick(self, audio: np.ndarray, sample_rate: int, model: str, options: TranscribeOptions) -> str:
        """A conversation turn's text, fast (Transcriber.quick), ahead of any upload waiting."""
        transcriber = self.listeners.transcriber_for(model)
        return await self.pool.run(lambda: transcriber.quick(audio, sample_rate, options))

    def close(self) -> None:
        self.pool.shutdown()


# Writing transcripts out ------------------------------------------------------------------------


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _cues(transcript: Transcript, separator: str) -> list[str]:
    return [
        f"{_timestamp(s.start, separator)} --> {_timestamp(s.end, separator)}\n{s.text}"
        for s in transcript.segments
        if s.text
    ]


def verbose_json(transcript: Transcript, *, words: bool, segments: bool = True) -> dict[str, Any]:
    """OpenAI's verbose_json: task, language, duration, text, segments, and words when asked for."""
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if segments:
        body["segments"] = [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": round(s.avg_logprob, 4),
                "compression_ratio": round(s.compression_ratio, 4),
                "no_speech_prob": round(s.no_speech_prob, 4),
            }
            for s in transcript.segments
        ]
    if words:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]
    body["usage"] = {"type": "duration", "seconds": round(transcript.duration, 3)}
    return body


def render(transcript: Transcript, response_format: str, *, words: bool = False, segments: bool = True) -> Rendered:
    """The transcript as `response_format` (RESPONSE_FORMATS), with its content type."""
    if response_format == "json":
        usage = {"type": "duration", "seconds": round(transcript.duration, 3)}
        return Rendered(json.dumps({"text": transcript.text, "usage": usage}), "application/json")
    if response_format == "verbose_json":
        return Rendered(json.dumps(verbose_json(transcript, words=words, segments=segments)), "application/json")
    if response_format == "text":
        return Rendered(transcript.text + "\n", "text/plain; charset=utf-8")
    if response_format == "srt":
        cues = _cues(transcript, ",")
        return Rendered("".join(f"{i}\n{cue}\n\n" for i, cue in enumerate(cues, 1)), "application/x-subrip")
    if response_format == "vtt":
        return Rendered(
            "WEBVTT\n\n" + "".join(f"{cue}\n\n" for cue in _cues(transcript, ".")), "text/vtt; charset=utf-8"
        )
    raise BadInput(f"unknown response_format {response_format!r}; choose one of {', '.join(RESPONSE_FORMATS)}")
