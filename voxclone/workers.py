"""A pool of threads for blocking model work, so the event loop never runs a model.

Identical jobs (same key) in flight at the same time run once and share the result. How many
requests may be in flight at once (`capacity`) is the speech service's to enforce: it admits whole
requests, never single jobs, so nothing is refused half-way.

Order: waiting jobs start earliest deadline first, not first come first served. A job's deadline is
when its result is needed: now for a whole clip or a stream's first piece, and for a stream's later
pieces the moment the listener will have played everything before them. So a new stream's first
piece overtakes pieces other streams will not need for seconds: a client who joins others already
speaking hears its first audio after at most one of their pieces, and none of them runs dry.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
# Engine calls made while cloning wait this long behind a speech request that arrives meanwhile:
# cloning never delays a listener by more than one of its own calls.
BACKGROUND_DELAY_S = 5.0


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class WorkerPool:
    def __init__(self, workers: int, queue_size: int, name: str = "voxclone-worker") -> None:
        self.workers = workers or default_workers()
        self.capacity = self.workers + queue_size
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=name)
        self._active = 0
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._free = self.workers
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()  # ties on deadline go first come first served

    @property
    def active(self) -> int:
        """Jobs running or waiting for a thread."""
        return self._active

    async def run(self, fn: Callable[[], T], *, key: str | None = None, deadline: float | None = None) -> T:
        """Run `fn` on a worker thread; share the result with identical in-flight jobs.

        `deadline` (event-loop time, default now) orders waiting jobs.
        """
        if key is not None and key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        loop = asyncio.get_running_loop()
        self._active += 1
        job = asyncio.ensure_future(self._execute(fn, loop.time() if deadline is None else deadline))
        if key is not None:
            self._inflight[key] = job

        def _done(_: asyncio.Future[Any]) -> None:
            self._active -= 1
            if key is not None and self._inflight.get(key) is job:
                del self._inflight[key]

        job.add_done_callback(_done)
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            if key is None:  # nobody else waits for it: don't start it if it has not started
                job.cancel()
            raise

    async def _execute(self, fn: Callable[[], T], deadline: float) -> T:
        await self._acquire(deadline)
        thread_job = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        # The thread cannot be interrupted: its slot is free only when it has really finished.
        thread_job.add_done_callback(lambda _: self._release())
        return await asyncio.shield(thread_job)

    async def _acquire(self, deadline: float) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (deadline, next(self._arrival), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot just as it was cancelled
                self._release()
            raise

    def _release(self) -> None:
        """Hand the slot to the waiting job with the earliest deadline, or free it."""
        while self._waiting:
            _, _, waiter = heapq.heappop(self._waiting)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def call_from_thread(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> T:
        """Run `fn` on the pool from a thread outside `loop` (cloning), after any speech waiting; blocks."""

        async def scheduled() -> T:
            return await self.run(fn, deadline=asyncio.get_running_loop().time() + BACKGROUND_DELAY_S)

        return asyncio.run_coroutine_threadsafe(scheduled(), loop).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
