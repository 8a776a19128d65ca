"""The synthesis worker pool: earliest deadline first, shared identical jobs, cancellable while waiting."""

from __future__ import annotations

import asyncio
import threading

from voxclone.workers import WorkerPool


async def _occupy(pool: WorkerPool) -> tuple[threading.Event, asyncio.Task[None]]:
    """Hold the pool's only worker until the returned event is set."""
    gate = threading.Event()
    holder = asyncio.create_task(pool.run(gate.wait))
    await asyncio.sleep(0.05)
    return gate, holder


def test_waiting_jobs_start_earliest_deadline_first() -> None:
    async def main() -> list[str]:
        pool = WorkerPool(1, queue_size=8)
        gate, holder = await _occupy(pool)
        order: list[str] = []
        now = asyncio.get_running_loop().time()
        jobs = [
            asyncio.create_task(pool.run(lambda name=name: order.append(name), deadline=now + offset))
            for name, offset in [("later piece", 5.0), ("first piece", 0.0), ("next piece", 2.0)]
        ]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(holder, *jobs)
        pool.shutdown()
        return order

    assert asyncio.run(main()) == ["first piece", "next piece", "later piece"]


def test_a_cancelled_waiting_job_never_runs_and_frees_its_place() -> None:
    async def main() -> tuple[list[str], object, int]:
        pool = WorkerPool(1, queue_size=8)
        gate, holder = await _occupy(pool)
        ran: list[str] = []
        dropped = asyncio.create_task(pool.run(lambda: ran.append("dropped")))
        await asyncio.sleep(0.05)
        dropped.cancel()
        gate.set()
        await holder
        result = await pool.run(lambda: ran.append("after") or "done")
        active = pool.active
        pool.shutdown()
        return ran, result, active

    ran, result, active = asyncio.run(main())
    assert ran == ["after"] and result == "done"
    assert active == 0  # nothing left counted as in progress


def test_identical_jobs_in_flight_share_one_run() -> None:
    async def main() -> tuple[list[int], int]:
        pool = WorkerPool(1, queue_size=1)
        gate, holder = await _occupy(pool)
        calls: list[int] = []
        shared = [asyncio.create_task(pool.run(lambda: calls.append(1) or len(calls), key="same")) for _ in range(3)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*shared)
        await holder
        pool.shutdown()
        return results, len(calls)

    results, calls = asyncio.run(main())
    assert results == [1, 1, 1] and calls == 1


def test_a_call_from_another_thread_waits_behind_speech_queued_meanwhile() -> None:
    async def main() -> list[str]:
        pool = WorkerPool(1, queue_size=8)
        gate, holder = await _occupy(pool)
        loop = asyncio.get_running_loop()
        order: list[str] = []
        background = loop.run_in_executor(None, pool.call_from_thread, lambda: order.append("cloning"), loop)
        await asyncio.sleep(0.05)
        speech = asyncio.create_task(pool.run(lambda: order.append("speech")))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(holder, speech, background)
        pool.shutdown()
        return order

    assert asyncio.run(main()) == ["speech", "cloning"]


def test_never_more_jobs_running_than_workers() -> None:
    workers = 2

    async def main() -> int:
        pool = WorkerPool(workers, queue_size=32)
        lock, running, peak = threading.Lock(), [0], [0]

        def job() -> None:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            threading.Event().wait(0.05)  # long enough that two always overlap
            with lock:
                running[0] -= 1

        tasks = [asyncio.create_task(pool.run(job)) for _ in range(20)]
        await asyncio.sleep(0.02)
        for task in tasks[::3]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pool.shutdown()
        return peak[0]

    assert asyncio.run(main()) == workers
