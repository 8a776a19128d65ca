"""200 requests/s of cache hits for 30 s on loopback, authentication on (issue 6).

    .venv/bin/python bench/load.py [--rate 200] [--seconds 30]

Open-loop: requests are sent on a fixed schedule whatever the latency, from one asyncio client with
keep-alive connections, to a real server process on 127.0.0.1 with an API key required. The rate
limit is raised for this run (by bench/server.py) so it measures serving, not refusing. Reports
errors, achieved rate, and latency p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from server import ServerProcess, save

KEY = "load-test-key"


async def run(url: str, rate: int, seconds: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        prompts = [f"Cached phrase number {i}." for i in range(10)]
        for p in prompts:  # fill the cache
            (await client.get("/speak_as/jm_kumo", params={"prompt": p})).raise_for_status()
        latencies: list[float] = []
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.get("/speak_as/jm_kumo", params={"prompt": prompts[i % len(prompts)]})
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        begin = time.perf_counter()
        for i in range(rate * seconds):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "achieved_rate": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * len(latencies)) - 1],
        "max_ms": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    with ServerProcess(VOXCLONE_API_KEYS=KEY) as server:
        result = asyncio.run(run(server.url, args.rate, args.seconds))
    save("load", result)


if __name__ == "__main__":
    main()
