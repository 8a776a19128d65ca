"""Speech to speech: what a recording says, said again in another voice, on the recording's clock.

1. Whisper hears the recording, with word timestamps; its words are grouped into sentences, each with
   the time it starts and ends.
2. Each sentence is spoken in the chosen voice by the speech service (cached and shared like any
   request). Where the voice's natural length is far from the original's, it is spoken again at the
   engine speed that comes closest (engines change their own durations more naturally than any
   stretch does).
3. The WORLD vocoder (pyworld) then stretches or squeezes it to the original sentence's exact length
   and, as far as this allows, gives it the original's pitch contour: the voice keeps its own pitch
   register and voicing, and follows the original's rises and falls in semitones around it. Engines
   take no pitch input, so this is done on their audio, after synthesis.
4. Each sentence is placed where the original one started, so the pauses between sentences (and any
   silence before and after) are kept.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from .asr import Segment, TranscribeOptions, Word
from .audio import ANALYSIS_RATE, OutputFormat, encode, resample
from .engines import AudioChunk
from .errors import BadAudio
from .speech import SpeechRequest, SpeechService, StreamEncoder
from .text import is_abbreviation
from .transcription import TranscriptionService
from .vad import speech_mask

_SENTENCE_END = re.compile(r"[.!?…。！？]$")
_FRAME_MS = 5.0  # WORLD analysis frame
# Within this ratio of lengths a sentence is only stretched; beyond it the engine speaks it again at
# the speed that comes closest, within the engine speeds that still sound natural.
_STRETCH_ONLY = 1.15
_SPEED_RANGE = (0.7, 1.6)
_SEMITONE_CAP = 7.0  # and never beyond a fifth either way (a detector's octave error would be heard)
_MIN_VOICED_FRAMES = 10
# The original's pitch movements are followed at this strength: its rises and falls, softened, as the
# voice's own range is narrower or wider than the speaker's (full strength raised Whisper's word error
# rate on three LibriSpeech clips from 0.07 to 0.11).
_CONTOUR_STRENGTH = 0.7
_SHORTEST_S = 0.6  # sentences shorter than this are said with the next one
_JOIN_GAP_S = 0.15


@dataclass(frozen=True)
class Sentence:
    """A sentence of the original and when it is heard (seconds)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class RevoiceOptions:
    voice: str
    model: str | None = None  # Whisper model that hears the original (None: the configured default)
    language: str | None = None
    pitch_contour: bool = True


def sentences(segments: list[Segment] | tuple[Segment, ...]) -> list[Sentence]:
    """Whisper's words grouped into sentences (a segment's last words end one too)."""
    out: list[Sentence] = []
    for segment in segments:
        current: list[Word] = []
        for word in segment.words:
            current.append(word)
            if _SENTENCE_END.search(word.word) and not is_abbreviation(word.word):
                out.append(_sentence(current))
                current = []
        if current:
            out.append(_sentence(current))
    return _merged([s for s in out if any(c.isalnum() for c in s.text)])


def _merged(found: list[Sentence]) -> list[Sentence]:
    """A sentence too short to say on its own ("Chapter one.") joins the next when no real pause parts them."""
    out: list[Sentence] = []
    for sentence in found:
        if out and (out[-1].end - out[-1].start < _SHORTEST_S or sentence.start - out[-1].end < _JOIN_GAP_S):
            out[-1] = Sentence(f"{out[-1].text} {sentence.text}", out[-1].start, sentence.end)
        else:
            out.append(sentence)
    return out


def fit_to_speech(found: list[Sentence], audio16k: np.ndarray) -> list[Sentence]:
    """Sentences trimmed to where the voice detector hears speech: Whisper's word times often run on
    into the pause after a sentence, and the pause is what must be kept."""
    mask = speech_mask(audio16k, ANALYSIS_RATE, pad_s=0.05)
    fitted = []
    for sentence in found:
        first, last = int(sentence.start * ANALYSIS_RATE), int(sentence.end * ANALYSIS_RATE)
        heard = np.flatnonzero(mask[first:last])
        if heard.size:
            first, last = first + int(heard[0]), first + int(heard[-1]) + 1
        fitted.append(Sentence(sentence.text, first / ANALYSIS_RATE, max(last, first + 1) / ANALYSIS_RATE))
    return fitted


def _sentence(words: list[Word]) -> Sentence:
    return Sentence(" ".join(w.word for w in words).strip(), words[0].start, max(words[-1].end, words[0].start + 0.05))


def _contour(audio: np.ndarray, rate: int, frames: int) -> np.ndarray | None:
    """The log-F0 contour of `audio` over `frames` WORLD frames, unvoiced gaps filled; None if too little voice."""
    import pyworld

    x = np.ascontiguousarray(audio, np.float64)
    f0, t = pyworld.dio(x, rate, frame_period=_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, rate)
    voiced = np.flatnonzero(f0 > 0)
    if voiced.size < _MIN_VOICED_FRAMES:
        return None
    log_f0 = np.interp(np.arange(f0.size), voiced, np.log(f0[voiced]))
    log_f0 = median_filter(log_f0, size=7, mode="nearest")  # 35 ms: the detector's one-frame jumps go
    log_f0 = np.convolve(np.pad(log_f0, 2, mode="edge"), np.ones(5) / 5, mode="valid")  # 25 ms smoothing
    return np.interp(np.linspace(0, log_f0.size - 1, frames), np.arange(log_f0.size), log_f0)


def conform(
    spoken: np.ndarray, rate: int, seconds: float, original: np.ndarray | None, original_rate: int
) -> np.ndarray:
    """`spoken` made `seconds` long, following `original`'s pitch contour when given (WORLD vocoder)."""
    import pyworld

    x = np.ascontiguousarray(spoken, np.float64)
    if x.size < rate * 0.05 or seconds <= 0:
        return np.zeros(int(seconds * rate), np.float32)
    f0, t = pyworld.dio(x, rate, frame_period=_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, rate)
    envelope = pyworld.cheaptrick(x, f0, t, rate)
    aperiodicity = pyworld.d4c(x, f0, t, rate)
    frames = max(2, round(seconds * 1000 / _FRAME_MS))
    source = np.clip(np.round(np.linspace(0, f0.size - 1, frames)).astype(int), 0, f0.size - 1)
    f0, envelope, aperiodicity = f0[source], envelope[source], aperiodicity[source]
    target = _contour(original, original_rate, frames) if original is not None else None
    voiced = f0 > 0
    if target is not None and voiced.sum() >= _MIN_VOICED_FRAMES:
        own = np.log(f0[voiced])
        semitones = (target[voiced] - target[voiced].mean()) * 12 / np.log(2)
        moves = np.clip(_CONTOUR_STRENGTH * semitones, -_SEMITONE_CAP, _SEMITONE_CAP)
        f0[voiced] = np.exp(own.mean() + moves * np.log(2) / 12)
    out = pyworld.synthesize(
        f0, np.ascontiguousarray(envelope), np.ascontiguousarray(aperiodicity), rate, frame_period=_FRAME_MS
    )
    length = round(seconds * rate)
    out = np.pad(out, (0, max(0, length - out.size)))[:length]
    peak = float(np.abs(out).max()) if out.size else 0.0
    gain = min(1.0, 0.99 / peak) if peak > 0 else 1.0
    return (out * gain).astype(np.float32)


class Revoicer:
    """Recordings said again in a voice, over the speech and transcription services."""

    def __init__(self, speech: SpeechService, transcription: TranscriptionService) -> None:
        self.speech = speech
        self.transcription = transcription

    async def hear(self, audio16k: np.ndarray, options: RevoiceOptions) -> list[Sentence]:
        """The recording's sentences (an unknown voice is refused first, before Whisper runs)."""
        await self.speech.find(options.voice)
        model = self.transcription.model(options.model)
        heard = await self.transcription.transcribe(
            audio16k, model, TranscribeOptions(language=options.language, words=True)
        )
        found = sentences(heard.segments)
        if not found:
            raise BadAudio("no speech was heard in the recording")
        return await self.speech.workers.run(lambda: fit_to_speech(found, audio16k))

    async def _say(self, text: str, voice: str, speed: float) -> AudioChunk:
        plan = await self.speech.plan(SpeechRequest(text=text, voice=voice, speed=speed))
        now = asyncio.get_running_loop().time()
        chunks = await asyncio.gather(*(self.speech.piece(plan, i, deadline=now) for i in range(len(plan.pieces))))
        rate = chunks[0].sample_rate
        return AudioChunk(np.concatenate([resample(c.samples, c.sample_rate, rate) for c in chunks]), rate, text)

    async def sentence(self, sentence: Sentence, audio16k: np.ndarray, options: RevoiceOptions) -> AudioChunk:
        """One sentence in the voice, as long as the original and (optionally) on its pitch contour."""
        target = sentence.end - sentence.start
        spoken = await self._say(sentence.text, options.voice, 1.0)
        ratio = spoken.seconds / target if target > 0 else 1.0
        if not 1 / _STRETCH_ONLY <= ratio <= _STRETCH_ONLY:
            low, high = _SPEED_RANGE
            spoken = await self._say(sentence.text, options.voice, round(min(high, max(low, ratio)), 2))
        original = (
            audio16k[int(sentence.start * ANALYSIS_RATE) : int(sentence.end * ANALYSIS_RATE)]
            if options.pitch_contour
            else None
        )
        samples = await self.speech.workers.run(
            lambda: conform(spoken.samples, spoken.sample_rate, target, original, ANALYSIS_RATE)
        )
        return AudioChunk(samples, spoken.sample_rate, sentence.text)

    def parts(self, audio16k: np.ndarray, found: list[Sentence], options: RevoiceOptions) -> AsyncIterator[AudioChunk]:
        """The revoiced recording in order: silence before each sentence, then the sentence.

        Admitted now (Busy if full); read it to the end or close it, which gives the place back.
        """
        admission = self.speech.admit()
        return self._parts(audio16k, found, options, admission.release)

    async def _parts(
        self, audio16k: np.ndarray, found: list[Sentence], options: RevoiceOptions, release: Callable[[], None]
    ) -> AsyncIterator[AudioChunk]:
        try:
            clock = 0.0  # seconds of the original already covered
            for sentence in found:
                spoken = await self.sentence(sentence, audio16k, options)
                gap = max(0.0, sentence.start - clock)
                if gap > 0:
                    yield AudioChunk(np.zeros(round(gap * spoken.sample_rate), np.float32), spoken.sample_rate, "")
                yield spoken
                clock = max(clock, sentence.start) + spoken.seconds
            tail = audio16k.size / ANALYSIS_RATE - clock
            if tail > 0:
                yield AudioChunk(np.zeros(round(tail * ANALYSIS_RATE), np.float32), ANALYSIS_RATE, "")
        finally:
            release()

    async def revoice(self, audio16k: np.ndarray, found: list[Sentence], options: RevoiceOptions) -> AudioChunk:
        """The whole revoiced recording, at the voice's sample rate."""
        chunks = [c async for c in self.parts(audio16k, found, options)]
        rate = next((c.sample_rate for c in chunks if c.text), ANALYSIS_RATE)
        samples = np.concatenate([resample(c.samples, c.sample_rate, rate) for c in chunks])
        return AudioChunk(samples, rate, " ".join(c.text for c in chunks if c.text))

    async def file(
        self, audio16k: np.ndarray, found: list[Sentence], options: RevoiceOptions, output: OutputFormat
    ) -> bytes:
        """The whole revoiced recording as one file of `output`."""
        whole = await self.revoice(audio16k, found, options)
        return await self.speech.workers.run(lambda: encode(whole.samples, whole.sample_rate, output))

    async def encoded(self, parts: AsyncIterator[AudioChunk], output: OutputFormat) -> AsyncIterator[bytes]:
        """Parts encoded into one stream as they are made."""
        encoder = StreamEncoder(output, self.speech.workers)
        async for chunk in parts:
            yield await encoder.encode(chunk)
        yield await encoder.finish()
