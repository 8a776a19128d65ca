"""A stream of encoded audio that several readers may follow while it is being produced.

Identical streams opened while one is in flight share it: a late reader replays from the start. When
every reader has gone, the producing task is cancelled, so nobody's disconnect leaves synthesis running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class AudioStream:
    """Encoded chunks of one synthesis, readable by several async readers while it is produced."""

    def __init__(self, key: str, content_type: str, voice_id: str, pieces: int) -> None:
        self.key = key
        self.pieces = pieces  # pieces of text it speaks (OpenAI's SSE reports them as input tokens)
        self.content_type = content_type
        self.voice_id = voice_id
        self.chunks: list[bytes] = []
        self.done = False
        self.error: BaseException | None = None
        self.readers = 0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

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
