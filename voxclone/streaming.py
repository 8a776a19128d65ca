"""Streamed speech: pieces synthesised one at a time on the worker pool and encoded as they come.

Scheduling is per piece, not per stream: each stream has at most one piece queued, with the time
its listener will need it as its deadline, so several streams take turns on the workers, a new
stream's first piece goes ahead of pieces others need later, and none waits for another to finish.
Identical streams opened while one is in flight share it (late readers replay from the start). When
every reader has gone, the stream stops scheduling pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .audio import Encoder
from .errors import Busy
from .synthesis import Plan, Speaker
from .workers import WorkerPool


class AudioStream:
    """Encoded chunks of one synthesis, readable by several async readers while it is produced."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.chunks: list[bytes] = []
        self.done = False
        self.error: BaseException | None = None
        self.readers = 0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def content_type(self) -> str:
        return self.plan.format.content_type

    def push(self, chunk: bytes) -> None:
        if chunk:
            self.chunks.append(chunk)
            self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        self.done, self.error = True, error
        self._wake()

    def _wake(self) -> None:
        # Readers wait on the event they saw; a fresh one for the next change avoids clear() races.
        self._changed.set()
        self._changed = asyncio.Event()

    async def read(self) -> AsyncIterator[bytes]:
        """Every chunk from the first, as it becomes available."""
        self.readers += 1
        index = 0
        try:
            while True:
                changed = self._changed
                while index < len(self.chunks):
                    yield self.chunks[index]
                    index += 1
                if self.done:
                    if self.error is not None:
                        raise self.error
                    return
                await changed.wait()
        finally:
            self.readers -= 1
            if self.readers == 0 and not self.done and self.task is not None:
                self.task.cancel()  # nobody listens any more: stop synthesising


class Streamer:
    """Opens streams for plans, sharing identical ones, bounded to `max_streams` at once."""

    def __init__(self, speaker: Speaker, workers: WorkerPool, max_streams: int) -> None:
        self.speaker = speaker
        self.workers = workers
        self.max_streams = max_streams
        self._open: dict[str, AudioStream] = {}

    def open(self, plan: Plan) -> AudioStream:
        shared = self._open.get(plan.key)
        if shared is not None:
            return shared
        stream = AudioStream(plan)
        cached = self.speaker.cached(plan)
        if cached is not None:
            stream.push(cached)
            stream.finish()
            return stream
        if len(self._open) >= self.max_streams:
            raise Busy(f"the server is busy ({len(self._open)} streams in progress); retry shortly", retry_after=1.0)
        self._open[plan.key] = stream
        stream.task = asyncio.create_task(self._produce(stream))
        stream.task.add_done_callback(lambda _: self._open.pop(plan.key, None))
        return stream

    async def _produce(self, stream: AudioStream) -> None:
        plan = stream.plan
        encoder = Encoder(plan.format, plan.source_rate)
        body: list[bytes] = []

        def emit(chunk: bytes) -> None:
            body.append(chunk)
            stream.push(chunk)

        loop = asyncio.get_running_loop()
        deadline = loop.time()  # the first piece is needed now
        try:
            emit(encoder.header())
            for index in range(len(plan.pieces)):

                def step(index: int = index) -> tuple[bytes, float]:
                    audio = self.speaker.piece_audio(plan, index)
                    data = encoder.encode(audio)
                    last = index == len(plan.pieces) - 1
                    return (data + encoder.finish() if last else data), audio.size / plan.source_rate

                # admit=False: admitted as a stream in open()
                data, seconds = await self.workers.run(step, admit=False, deadline=deadline)
                emit(data)
                # Playback starts with the first piece; each next piece is needed once the ones
                # before it have played.
                deadline = (loop.time() if index == 0 else deadline) + seconds
        except asyncio.CancelledError:
            stream.finish(None)
            with contextlib.suppress(Exception):
                encoder.finish()
            raise
        except Exception as error:  # the readers re-raise it; the HTTP layer maps it
            stream.finish(error)
            return
        if plan.format.name != "wav":  # a streamed WAV has an open-ended header; don't cache that one
            self.speaker.cache.put(plan.key, b"".join(body), voice_id=plan.voice.id)
        stream.finish()
