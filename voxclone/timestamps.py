"""Speech with its timings: encoded audio and, for each character of the text, when it is heard.

The timings come from the engine where it knows them (AudioChunk.words: predicted phoneme durations
where the model has them, a test engine's exact spans); otherwise Whisper hears the piece and its word timestamps
are matched to the piece's words (forced alignment). Pieces are planned, cached and shared by the
speech service like any other request; this only adds the alignment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from . import alignment
from .alignment import CharTimes
from .asr import TranscribeOptions
from .audio import encode, resample
from .engines import AudioChunk, WordTiming
from .speech import Plan, SpeechRequest, SpeechService, StreamEncoder
from .transcription import TranscriptionService


@dataclass(frozen=True)
class TimedAudio:
    """Encoded audio with the alignment of the text as sent and as spoken (ElevenLabs' two)."""

    audio: bytes
    content_type: str
    alignment: CharTimes
    normalized: CharTimes
    seconds: float


class TimedSpeech:
    """Speech from the speech service, aligned character by character."""

    def __init__(self, speech: SpeechService, transcription: TranscriptionService) -> None:
        self.speech = speech
        self.transcription = transcription

    async def words(self, chunk: AudioChunk, engine: str) -> tuple[WordTiming, ...]:
        """The chunk's word timings: the engine's, else Whisper's, matched to the chunk's words."""
        if chunk.words or not chunk.text.strip():
            return chunk.words
        english = self.speech.engines[engine].capabilities.languages == ("en",)
        model = "tiny.en" if english else self.transcription.settings.transcription_model
        transcriber = self.transcription.listeners.transcriber_for(model)
        options = TranscribeOptions(words=True, vad=False)
        heard = await self.transcription.pool.run(
            lambda: transcriber.transcript(chunk.samples, chunk.sample_rate, options)
        )
        return alignment.force(chunk.text, [WordTiming(w.word, w.start, w.end) for w in heard.words], chunk.seconds)

    async def chunk_times(self, chunk: AudioChunk, voice: str) -> CharTimes:
        """A spoken chunk's characters and when each is heard, from the chunk's start (WebSocket replies)."""
        engine = self.speech.library.get(voice).engine
        return alignment.char_times(chunk.text, await self.words(chunk, engine), chunk.seconds)

    async def piece_times(
        self, chunk: AudioChunk, engine: str, spoken: str, original: str
    ) -> tuple[CharTimes, CharTimes]:
        """(as sent, as spoken) character times of one piece, from the start of its audio."""
        normalized = alignment.char_times(spoken, await self.words(chunk, engine), chunk.seconds)
        return alignment.to_original(original, normalized), normalized

    def _texts(self, plan: Plan, original: str) -> list[tuple[str, str]]:
        """(spoken, original) text of each piece; a piece's trailing space is timed with its pause."""
        originals = alignment.original_pieces(original, plan.pieces)
        last = len(plan.pieces) - 1
        return [(p if i == last else p + " ", o) for i, (p, o) in enumerate(zip(plan.pieces, originals, strict=True))]

    async def clip(self, request: SpeechRequest) -> TimedAudio:
        """The whole clip, encoded, with the alignment of all of it."""
        plan = await self.speech.plan(request)
        admission = self.speech.admit()
        try:
            now = asyncio.get_running_loop().time()
            chunks = await asyncio.gather(*(self.speech.piece(plan, i, deadline=now) for i in range(len(plan.pieces))))
        finally:
            admission.release()
        original, spoken, offset = alignment.EMPTY, alignment.EMPTY, 0.0
        rate = chunks[0].sample_rate
        for chunk, (spoken_text, original_text) in zip(chunks, self._texts(plan, request.text), strict=True):
            times = await self.piece_times(chunk, plan.engine_name, spoken_text, original_text)
            original, spoken = original + times[0].shifted(offset), spoken + times[1].shifted(offset)
            offset += chunk.seconds
        samples = np.concatenate([resample(c.samples, c.sample_rate, rate) for c in chunks])
        body = await self.speech.workers.run(lambda: encode(samples, rate, plan.format))
        return TimedAudio(body, plan.format.content_type, original, spoken, samples.size / rate)

    async def stream(self, request: SpeechRequest) -> AsyncIterator[TimedAudio]:
        """The clip piece by piece as it is made, each with its alignment (times from the clip's start).

        Admitted now (Busy if full); read it to the end or close it, which gives the place back.
        """
        plan = await self.speech.plan(request, streamed=True)
        admission = self.speech.admit()
        return self._stream(plan, request.text, admission.release)

    async def _stream(self, plan: Plan, original: str, release: Callable[[], None]) -> AsyncIterator[TimedAudio]:
        encoder = StreamEncoder(plan.format, self.speech.workers)
        texts = self._texts(plan, original)
        offset = 0.0
        try:
            index = 0
            async for chunk in self.speech.stream_chunks(plan):
                spoken_text, original_text = texts[index]
                aligned, normalized = await self.piece_times(chunk, plan.engine_name, spoken_text, original_text)
                body = await encoder.encode(chunk)
                if index == len(plan.pieces) - 1:
                    body += await encoder.finish()
                yield TimedAudio(
                    body, plan.format.content_type, aligned.shifted(offset), normalized.shifted(offset), chunk.seconds
                )
                offset += chunk.seconds
                index += 1
        finally:
            release()
