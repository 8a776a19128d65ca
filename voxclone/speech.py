"""The speech service: text in, encoded audio out, for whole files, streams and text arriving over time.

It owns every step between a front end and an engine, written once:
- plan: validate the request, resolve the voice, its engine and filter chain, split the text;
- pieces: each piece's audio is looked up in the cache, or made once (identical pieces in flight at
  the same time are shared) on the worker pool, earliest deadline first, then passed through the
  voice's filters, watermarked (voxclone.provenance) and stored, so every API, format, stream and
  cache hit carries the mark, made once per piece;
- admission: each clip, stream or session is admitted once, when it starts, and never refused
  half-way; beyond capacity a new one gets Busy (503 with Retry-After);
- encoding, and the cache of whole clips, so an identical request is answered without any synthesis.

Routes and CLI commands parse input, call this, and format output.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import numpy as np

from . import text as textlib
from .audio import Encoder, OutputFormat, encode, resample, to_int16
from .cache import AudioCache, cache_key
from .engines import AudioChunk, Engines, RemoteEngine, SpeakOptions, WordTiming
from .errors import BadInput, Busy, LimitExceeded
from .files import atomic_write
from .filters import FilterChain, build_chain
from .metrics import Metrics
from .provenance import Provenance
from .settings import Settings
from .streaming import AudioStream
from .voices import Voice, VoiceLibrary
from .workers import WorkerPool

MIN_SPEED, MAX_SPEED = 0.25, 4.0
# Pause after a piece, by how it ends: sentences breathe longer than clauses.
_SENTENCE_PAUSE_S = 0.28
_CLAUSE_PAUSE_S = 0.12
_CHAINS_KEPT = 256  # filter chains of recently heard voices, rebuilt from JSON only when a voice changes


@dataclass(frozen=True)
class SpeechRequest:
    """What to say, in which voice, how fast, in which format. Its normal form is the cache key."""

    text: str
    voice: str
    speed: float | None = None  # None: the voice's stored speed (1.0 unless set)
    format: OutputFormat = field(default_factory=lambda: OutputFormat("wav"))


@dataclass(frozen=True)
class Plan:
    """A request resolved against the library: voice, engine, filters, pieces, options and cache key."""

    voice: Voice
    engine_name: str
    chain: FilterChain
    pieces: tuple[str, ...]
    options: SpeakOptions
    format: OutputFormat
    key: str
    marked: bool = False  # pieces carry the watermark (unmarked audio cached before never stands in for it)

    def piece_key(self, index: int) -> str:
        return cache_key(
            kind="piece",
            voice=self.voice.id,
            version=self.voice.version,
            text=self.pieces[index],
            speed=round(self.options.speed, 3),
            **({"mark": 1} if self.marked else {}),
        )

    def piece_options(self, index: int) -> SpeakOptions:
        """The options of one engine call: its seed comes from the voice and the piece's text, so the same
        piece always sounds the same, whichever request (file, stream, session) asks for it."""
        return replace(self.options, seed=_seed(self.pieces[index], self.voice))


@dataclass(frozen=True)
class Clip:
    """A whole encoded clip."""

    body: bytes
    content_type: str
    voice_id: str


def _pause(piece: str, rate: int, speed: float) -> np.ndarray:
    """Silence after a piece, by how it ends; none where a piece was cut between words."""
    end = piece.rstrip()[-1:]
    seconds = _SENTENCE_PAUSE_S if end in ".!?…" else _CLAUSE_PAUSE_S if end in ",;:—–" else 0.0
    return np.zeros(int(seconds / speed * rate), np.float32)


def _seed(text: str, voice: Voice) -> int:
    """The same text in the same voice always draws the same random numbers (engines with noise repeat)."""
    return int.from_bytes(hashlib.sha256(f"{voice.id}:{voice.version}:{text}".encode()).digest()[:4], "little")


def _pack(chunk: AudioChunk) -> bytes:
    """A piece's audio as cached: a JSON header (rate, word timings), then 16-bit samples (what every
    encoder quantises to anyway)."""
    header = json.dumps({"rate": chunk.sample_rate, "words": [[w.word, w.start, w.end] for w in chunk.words]}).encode()
    return len(header).to_bytes(4, "little") + header + to_int16(chunk.samples).tobytes()


def _unpack(blob: bytes, text: str) -> AudioChunk:
    size = int.from_bytes(blob[:4], "little")
    header = json.loads(blob[4 : 4 + size])
    samples = np.frombuffer(blob[4 + size :], "<i2").astype(np.float32) / 32767.0
    return AudioChunk(samples, int(header["rate"]), text, tuple(WordTiming(w, s, e) for w, s, e in header["words"]))


def _joined(chunks: list[AudioChunk], text: str) -> AudioChunk:
    """One chunk from several, at the first one's rate."""
    if len(chunks) == 1:
        return chunks[0]
    rate = chunks[0].sample_rate if chunks else 24_000
    samples = [resample(c.samples, c.sample_rate, rate) for c in chunks]
    return AudioChunk(np.concatenate(samples) if samples else np.zeros(0, np.float32), rate, text)


class Admission:
    """A place among the requests being served; `release` is idempotent."""

    def __init__(self, service: SpeechService) -> None:
        self._service: SpeechService | None = service

    def release(self) -> None:
        if self._service is not None:
            self._service._admitted -= 1
            self._service = None


class SpeechService:
    """Every way of turning text into audio, over one worker pool, one cache and one voice library."""

    def __init__(
        self,
        settings: Settings,
        engines: Engines,
        library: VoiceLibrary,
        cache: AudioCache,
        workers: WorkerPool,
        metrics: Metrics | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.settings = settings
        self.engines = engines
        self.library = library
        self.cache = cache
        self.workers = workers
        self.metrics = metrics or Metrics()
        self.provenance = provenance  # None: pieces are not marked (an administrator turned it off)
        self.capacity = workers.capacity
        self._admitted = 0
        self._chains: OrderedDict[str, FilterChain] = OrderedDict()
        self._clips: dict[str, asyncio.Future[Clip]] = {}
        self._streams: dict[str, AudioStream] = {}

    # Planning -----------------------------------------------------------------------------------

    async def plan(self, request: SpeechRequest, *, streamed: bool = False) -> Plan:
        """Validate and resolve a request; raises VoiceNotFound/VoiceNotReady/BadInput/LimitExceeded/EngineUnavailable.

        A `streamed` plan starts with short pieces so the first audio comes soon (text.split's ramp).
        A whole file has no use for that: each sentence is one piece, so no phrase is cut in two
        (its intonation reset mid-phrase) and engines run fewer calls (RTF 0.233 -> 0.203 on
        bench/rtf.py's sentence). The two plans have different pieces, hence different cache keys.
        """
        if request.speed is not None and not MIN_SPEED <= request.speed <= MAX_SPEED:
            raise BadInput(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {request.speed}")
        if len(request.text) > self.settings.max_text_chars:
            raise LimitExceeded(
                f"text is {len(request.text)} characters; the limit is {self.settings.max_text_chars}",
                limit="max_text_chars",
            )
        voice = await self.find(request.voice)
        limit = self.engines[voice.engine].capabilities.max_piece_chars
        pieces = tuple(textlib.split(request.text, limit=limit, ramp=streamed))
        if not pieces:
            raise BadInput("text has nothing speakable in it")
        speed = voice.speed if request.speed is None else request.speed
        options = SpeakOptions(speed=speed)
        marked = self.provenance is not None
        key = cache_key(
            engine=voice.engine,
            voice=voice.id,
            version=voice.version,
            pieces=pieces,
            speed=round(speed, 3),
            format=request.format.cache_token(),
            **({"mark": 1} if marked else {}),
        )
        self.metrics.characters.inc(len(request.text))
        return Plan(voice, voice.engine, self._chain(voice), pieces, options, request.format, key, marked)

    def voice(self, name: str) -> Voice:
        """A voice that can speak now: found, ready, and its engine usable here. Blocking."""
        voice = self.library.get(name)
        voice.require_ready()
        self.engines.usable(voice.engine)
        return voice

    async def find(self, name: str) -> Voice:
        """`voice` off the event loop: the library is a database (maybe on another machine), and a
        voice's files are written out from it (or a bucket) on first use."""
        return await anyio.to_thread.run_sync(self.voice, name)

    def _chain(self, voice: Voice) -> FilterChain:
        key = f"{voice.id}:{voice.version}"
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = build_chain(voice.filters)
            while len(self._chains) > _CHAINS_KEPT:
                self._chains.popitem(last=False)
        return chain

    # Admission ----------------------------------------------------------------------------------

    def admit(self) -> Admission:
        """A place for one clip, stream or session, or Busy when every place is taken."""
        if self._admitted >= self.capacity:
            raise Busy(f"the server is busy ({self._admitted} requests in progress); retry shortly", retry_after=1.0)
        self._admitted += 1
        return Admission(self)

    @property
    def active(self) -> int:
        """Clips, streams and sessions being served."""
        return self._admitted

    # Pieces -------------------------------------------------------------------------------------

    async def piece(
        self, plan: Plan, index: int, *, deadline: float | None = None, use_cache: bool = True
    ) -> AudioChunk:
        """Piece `index` of the plan, filtered, followed by its pause unless it is the last.

        Cached pieces are read on a worker too: the pool orders every disk and model access by deadline.
        """
        chunk = await self.workers.run(
            lambda: self._cached_piece(plan, index) if use_cache else None, deadline=deadline
        )
        if chunk is None:
            chunk = await self._made_piece(plan, index, deadline)
        if index < len(plan.pieces) - 1:
            pause = _pause(plan.pieces[index], chunk.sample_rate, plan.options.speed)
            chunk = AudioChunk(np.concatenate([chunk.samples, pause]), chunk.sample_rate, chunk.text, chunk.words)
        return chunk

    def _cached_piece(self, plan: Plan, index: int) -> AudioChunk | None:
        blob = self.cache.get(plan.piece_key(index))
        if blob is None:
            return None
        self.metrics.piece_cache_hits.inc()
        return _unpack(blob, plan.pieces[index])

    async def _made_piece(self, plan: Plan, index: int, deadline: float | None) -> AudioChunk:
        """Synthesise, filter and store one piece; identical pieces in flight are made once."""
        engine = self.engines.usable(plan.engine_name)
        if isinstance(engine, RemoteEngine):
            chunks = [c async for c in engine.astream(plan.pieces[index], plan.voice.spec(), plan.piece_options(index))]
            return await self.workers.run(lambda: self._finish_piece(plan, index, chunks, 0.0), deadline=deadline)

        def make() -> AudioChunk:
            started = time.perf_counter()
            chunks = list(engine.synthesize(plan.pieces[index], plan.voice.spec(), plan.piece_options(index)))
            return self._finish_piece(plan, index, chunks, time.perf_counter() - started)

        return await self.workers.run(make, key=plan.piece_key(index), deadline=deadline)

    def _finish_piece(self, plan: Plan, index: int, chunks: list[AudioChunk], seconds: float) -> AudioChunk:
        chunk = _joined(chunks, plan.pieces[index])
        if plan.chain:
            chunk = AudioChunk(
                plan.chain.apply(chunk.samples, chunk.sample_rate), chunk.sample_rate, chunk.text, chunk.words
            )
        if plan.marked and self.provenance is not None:
            chunk = self.provenance.mark(chunk, plan.voice.id)
        self.metrics.synthesis_seconds.labels(plan.engine_name).inc(seconds)
        self.metrics.audio_seconds.labels(plan.engine_name).inc(chunk.seconds)
        self.cache.put(plan.piece_key(index), _pack(chunk), voice_id=plan.voice.id)
        return chunk

    # Whole clips --------------------------------------------------------------------------------

    async def clip(self, request: SpeechRequest, *, bypass_cache: bool = False) -> Clip:
        """The whole clip, encoded: from the cache, shared with an identical one in flight, or made."""
        plan = await self.plan(request)
        if not bypass_cache:
            body = self.cache.get(plan.key)  # a hit is answered without waiting for a worker
            (self.metrics.cache_hits if body is not None else self.metrics.cache_misses).inc()
            if body is not None:
                return Clip(body, plan.format.content_type, plan.voice.id)
            if plan.key in self._clips:
                return await asyncio.shield(self._clips[plan.key])
        admission = self.admit()
        job = asyncio.ensure_future(self._render(plan, use_cache=not bypass_cache))
        job.add_done_callback(lambda _: admission.release())
        if not bypass_cache:
            self._clips[plan.key] = job
            job.add_done_callback(lambda _: self._clips.pop(plan.key, None))
        return await asyncio.shield(job)

    async def _render(self, plan: Plan, *, use_cache: bool) -> Clip:
        now = asyncio.get_running_loop().time()
        chunks = await asyncio.gather(
            *(self.piece(plan, i, deadline=now, use_cache=use_cache) for i in range(len(plan.pieces)))
        )
        body = await self.workers.run(lambda: self._encode_clip(plan, chunks), deadline=now)
        return Clip(body, plan.format.content_type, plan.voice.id)

    def _encode_clip(self, plan: Plan, chunks: list[AudioChunk]) -> bytes:
        whole = _joined(chunks, " ".join(plan.pieces))
        body = encode(whole.samples, whole.sample_rate, plan.format)
        self.cache.put(plan.key, body, voice_id=plan.voice.id)
        return body

    async def audio(self, request: SpeechRequest, *, use_cache: bool = True) -> AudioChunk:
        """The whole clip as audio (not encoded), for callers that analyse or re-encode it."""
        plan = await self.plan(request)
        admission = self.admit()
        try:
            now = asyncio.get_running_loop().time()
            chunks = await asyncio.gather(
                *(self.piece(plan, i, deadline=now, use_cache=use_cache) for i in range(len(plan.pieces)))
            )
        finally:
            admission.release()
        return _joined(list(chunks), request.text)

    async def write_file(self, request: SpeechRequest, path: Path) -> float:
        """Speak into a file (format from the request), written atomically; returns seconds of audio."""
        whole = await self.audio(request)
        body = await self.workers.run(lambda: encode(whole.samples, whole.sample_rate, request.format))
        await asyncio.get_running_loop().run_in_executor(None, atomic_write, path, body)
        return whole.seconds

    # Streams ------------------------------------------------------------------------------------

    async def stream(self, request: SpeechRequest) -> AudioStream:
        """An encoded stream of the request, first piece first; identical open streams are shared.

        Admitted now (Busy if full), so a stream never fails half-way for lack of capacity.
        """
        plan = await self.plan(request, streamed=True)
        shared = self._streams.get(plan.key)
        if shared is not None:
            return shared
        stream = AudioStream(plan.key, plan.format.content_type, plan.voice.id, len(plan.pieces))
        cached = self.cache.get(plan.key)
        (self.metrics.cache_hits if cached is not None else self.metrics.cache_misses).inc()
        if cached is not None:
            stream.push(cached)
            stream.finish()
            return stream
        admission = self.admit()
        self._streams[plan.key] = stream
        stream.task = asyncio.create_task(self._produce(plan, stream))

        def done(_: asyncio.Task[None]) -> None:
            admission.release()
            self._streams.pop(plan.key, None)

        stream.task.add_done_callback(done)
        return stream

    async def _produce(self, plan: Plan, stream: AudioStream) -> None:
        body: list[bytes] = []

        def emit(data: bytes) -> None:
            body.append(data)
            stream.push(data)

        encoder = StreamEncoder(plan.format, self.workers)
        started = asyncio.get_running_loop().time()
        try:
            async for chunk in self.stream_chunks(plan):
                if not body:
                    self.metrics.first_audio.observe(asyncio.get_running_loop().time() - started)
                emit(await encoder.encode(chunk))
            emit(await encoder.finish())
        except asyncio.CancelledError:
            stream.finish(None)
            raise
        except Exception as error:  # the readers re-raise it; the HTTP layer maps it
            stream.finish(error)
            return
        if plan.format.name != "wav":  # a streamed WAV has an open-ended header; don't cache that one
            await self.workers.run(lambda: self.cache.put(plan.key, b"".join(body), voice_id=plan.voice.id))
        stream.finish()

    async def stream_chunks(self, plan: Plan) -> AsyncIterator[AudioChunk]:
        """The plan's pieces in order, each scheduled for when its listener will need it.

        Playback starts with the first piece, needed now; each next piece is needed once the ones
        before it have played, so other streams' first pieces may go ahead of it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        for index in range(len(plan.pieces)):
            chunk = await self.piece(plan, index, deadline=deadline)
            yield chunk
            deadline = (loop.time() if index == 0 else deadline) + chunk.seconds

    # Sessions -----------------------------------------------------------------------------------

    async def session(self, voice: str, output: OutputFormat, speed: float | None = None) -> SpeechSession:
        """Text arriving over time, spoken as one continuous stream (admitted now, for its whole life)."""
        if speed is not None and not MIN_SPEED <= speed <= MAX_SPEED:
            raise BadInput(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
        return SpeechSession(self, (await self.find(voice)).id, output, speed, self.admit())


class StreamEncoder:
    """Encodes chunks into one stream on the worker pool; the encoder is made at the first chunk's rate,
    and its header (a streamed WAV's) goes out with the first bytes."""

    def __init__(self, output: OutputFormat, workers: WorkerPool) -> None:
        self.format = output
        self.workers = workers
        self._encoder: Encoder | None = None

    async def encode(self, chunk: AudioChunk) -> bytes:
        if self._encoder is None:
            encoder = self._encoder = Encoder(self.format, chunk.sample_rate)
            return encoder.header() + await self.workers.run(lambda: encoder.encode(chunk.samples))
        encoder = self._encoder
        return await self.workers.run(
            lambda: encoder.encode(resample(chunk.samples, chunk.sample_rate, encoder.source_rate))
        )

    async def finish(self) -> bytes:
        encoder = self._encoder
        return await self.workers.run(encoder.finish) if encoder is not None else b""


class SpeechSession:
    """One voice speaking text as it arrives (ElevenLabs' stream-input): each segment is planned,
    cached and shared like any request, and encoded into one continuous stream."""

    def __init__(
        self, service: SpeechService, voice: str, output: OutputFormat, speed: float | None, admission: Admission
    ) -> None:
        self.service = service
        self.voice = voice
        self.format = output
        self.speed = speed
        self._admission = admission
        self._encoder = StreamEncoder(output, service.workers)
        weakref.finalize(self, admission.release)

    async def speak(self, text: str) -> AsyncIterator[tuple[bytes, AudioChunk]]:
        """Encoded audio of `text`, piece by piece, with the chunk each part encodes."""
        if not text.strip():
            return
        plan = await self.service.plan(
            SpeechRequest(text=text, voice=self.voice, speed=self.speed, format=self.format), streamed=True
        )
        async for chunk in self.service.stream_chunks(plan):
            yield await self._encoder.encode(chunk), chunk

    async def finish(self) -> bytes:
        """The stream's tail (a codec's last frames); the session's place is released."""
        try:
            return await self._encoder.finish()
        finally:
            self.close()

    def close(self) -> None:
        self._admission.release()
