"""Cache-hit latency at the server (issue 2: under 20 ms), on a real uvicorn server on 127.0.0.1.

    .venv/bin/python bench/cache_hit.py [--requests 200]

Timed at the client over a loopback keep-alive connection, which bounds the server's own time from
above; reports p50/p95/p99 in milliseconds and writes bench/out/cache_hit.json. The rate limit is
raised for this run so it measures serving, not refusing.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from server import UNLIMITED, save

from voxclone.server import create_app
from voxclone.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(Settings(data_dir=Path(tmp), rate_limit=UNLIMITED)),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            params = {"prompt": "A cached sentence, served again and again."}
            client.get("/speak_as/jm_kumo", params=params).raise_for_status()  # fill the cache
            timings = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = client.get("/speak_as/jm_kumo", params=params)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
        server.should_exit = True
        thread.join(timeout=10)
    timings.sort()
    result = {
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[int(0.95 * len(timings)) - 1],
        "p99_ms": timings[int(0.99 * len(timings)) - 1],
        "requests": len(timings),
    }
    save("cache_hit", result)


if __name__ == "__main__":
    main()
