"""A bounded pool of threads for blocking model work, so the event loop never runs a model.

Back-pressure: when every worker is busy and the queue is full, `run` raises Busy at once (the
server answers 503 with Retry-After) instead of queueing without bound. Identical jobs (same key)
in flight at the same time run once and share the result.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import Busy

T = TypeVar("T")


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class WorkerPool:
    def __init__(self, workers: int, queue_size: int, name: str = "voxclone-worker") -> None:
        self.workers = workers or default_workers()
        self.capacity = self.workers + queue_size
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=name)
        self._active = 0
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    @property
    def active(self) -> int:
        """Jobs running or waiting for a thread."""
        return self._active

    async def run(self, fn: Callable[[], T], *, key: str | None = None, admit: bool = True) -> T:
        """Run `fn` on a worker thread; share the result with identical in-flight jobs.

        `admit=False` skips the capacity check: for the next piece of a stream already admitted,
        which must not fail half-way (its stream was counted when it was opened).
        """
        if key is not None and key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        if admit and self._active >= self.capacity:
            raise Busy(f"the server is busy ({self._active} requests in progress); retry shortly", retry_after=1.0)
        self._active += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        if key is not None:
            self._inflight[key] = future

        def _done(_: asyncio.Future[Any]) -> None:
            self._active -= 1
            if key is not None and self._inflight.get(key) is future:
                del self._inflight[key]

        future.add_done_callback(_done)
        return await asyncio.shield(future)

    def submit(self, fn: Callable[[], T]) -> Any:
        """Run without waiting (for work whose result is read elsewhere), counted like any job."""
        if self._active >= self.capacity:
            raise Busy("the server is busy; retry shortly", retry_after=1.0)
        self._active += 1
        future = self._executor.submit(fn)
        future.add_done_callback(lambda _: self._release())
        return future

    def _release(self) -> None:
        self._active -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
