"""Server memory over many requests (issue 4: peak RSS after 2,000 mixed requests within 10 % of after 200).

    .venv/bin/python bench/memory.py [--requests 2000]

Mixed load on a real server process on 127.0.0.1: new short syntheses (whole and streamed, Kokoro and
Piper), cache hits, voice listings and errors. Prints the server's RSS and peak RSS (VmHWM) after 200
requests, every 500, and at the end.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

import httpx
from server import ServerProcess, save


def one(client: httpx.Client, n: int, rng: random.Random) -> int:
    """One request of a random kind; its status code."""
    kind = rng.random()
    if kind < 0.25:
        return client.post(
            "/v1/audio/speech",
            json={
                "input": f"Request number {n}.",
                "voice": rng.choice(["jm_kumo", "joe"]),
                "response_format": rng.choice(["mp3", "pcm", "opus"]),
            },
        ).status_code
    if kind < 0.40:
        with client.stream(
            "POST", "/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000", json={"text": f"Streamed {n}."}
        ) as r:
            r.read()
            return r.status_code
    if kind < 0.80:
        return client.get("/speak_as/jm_kumo", params={"prompt": f"Cached sentence {n % 20}."}).status_code
    if kind < 0.95:
        return client.get("/v1/voices").status_code
    return client.get("/speak_as/nobody", params={"prompt": "x"}).status_code  # 404 on purpose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(0)
    with ServerProcess() as server, httpx.Client(base_url=server.url, timeout=120) as client:
        rss, peak, statuses = {}, {}, Counter()
        for n in range(1, args.requests + 1):
            statuses[one(client, n, rng)] += 1
            if n in (200, args.requests) or n % 500 == 0:
                rss[n], peak[n] = server.rss_mib(), server.rss_mib("VmHWM")
                print(f"after {n} requests: RSS {rss[n]:.0f} MiB, peak {peak[n]:.0f} MiB", flush=True)
    # Only 200s and the deliberate 404s: a 429 or 5xx would mean it measured refusals, not serving.
    result = {
        "rss_mib": rss,
        "peak_rss_mib": peak,
        "growth_after_200": rss[args.requests] / rss[200] - 1,
        "peak_growth_after_200": peak[args.requests] / peak[200] - 1,
        "statuses": dict(statuses),
    }
    save("memory", result)


if __name__ == "__main__":
    main()
