"""What a reverse proxy costs (issue 22): time to first audio and cache-hit latency, direct vs through nginx.

    .venv/bin/python bench/proxy.py [--rounds 20] [--requests 500]

A real server process on 127.0.0.1 (bench/server.py) and Debian's nginx in front of it on the same
machine, configured as the tests run it (tests/reverse_proxy.py: HTTP/1.1 to the server, WebSocket
upgrade headers, X-Forwarded-For; nginx's default buffering, which voxclone's X-Accel-Buffering turns
off for streams). The server runs with --allow-public's setting so proxied requests need no key.
- TTFA with synthesis: --rounds texts, each streamed once direct and once through nginx (order
  alternating), as WAV, which is never cached; first audio is the first byte after the 44-byte
  header. Both medians, and the median and p90 of the per-text difference (proxy - direct). On a
  loaded machine synthesis time varies far more than the proxy costs, so also:
- TTFA without synthesis: --requests streams of one sentence already in the cache (served from it at
  once), alternating direct and proxy: time to the first audio byte, p50/p99 each. This is the
  proxy's own share of TTFA, without synthesis noise.
- Cache hits: --requests GET /speak_as of one cached sentence on each path, interleaved, over
  keep-alive connections from the client; p50/p99 in ms each.
Writes bench/out/proxy.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx
from server import ServerProcess, save

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reverse_proxy import Nginx

TEXT = "Round {n}. The lighthouse keeper climbed the stairs, lit the lamp and watched the boats come home."
_WAV_HEADER = 44


def ttfa(client: httpx.Client, text: str, fmt: str = "wav") -> float:
    """Seconds to the first audio byte of a streamed response (after the WAV header, for WAV)."""
    body = {"input": text, "voice": "jm_kumo", "response_format": fmt, "stream": True}
    header = _WAV_HEADER if fmt == "wav" else 0
    started = time.perf_counter()
    received = 0
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        chunks = response.iter_bytes()
        for chunk in chunks:
            received += len(chunk)
            if received > header:
                first = time.perf_counter() - started
                break
        for _ in chunks:  # read the rest, so the next request starts on an idle server
            pass
    return first


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with (
        ServerProcess(VOXCLONE_ALLOW_PUBLIC_WITHOUT_KEYS="true") as server,
        Nginx(server.port) as proxy,
        httpx.Client(base_url=server.url, timeout=300) as direct,
        httpx.Client(base_url=proxy.url + "/voice", timeout=300) as proxied,
    ):
        paths = {"direct": direct, "proxy": proxied}
        for client in paths.values():
            ttfa(client, "Warming up the engine once.")
        ttfas: dict[str, list[float]] = {"direct": [], "proxy": []}
        for n in range(args.rounds):
            order = ("direct", "proxy") if n % 2 == 0 else ("proxy", "direct")
            for name in order:
                ttfas[name].append(ttfa(paths[name], TEXT.format(n=n)))
            print(f"round {n}: direct {ttfas['direct'][-1] * 1000:.1f} ms, proxy {ttfas['proxy'][-1] * 1000:.1f} ms")
        differences = [(p - d) * 1000 for p, d in zip(ttfas["proxy"], ttfas["direct"], strict=True)]

        cached_ttfa: dict[str, list[float]] = {"direct": [], "proxy": []}
        cached = "A cached sentence, streamed again and again."
        ttfa(direct, cached, "mp3")  # a finished mp3 stream is cached
        params = {"prompt": cached}
        for client in paths.values():
            client.get("/speak_as/jm_kumo", params=params).raise_for_status()  # fills the cache, opens the connection
        hits: dict[str, list[float]] = {"direct": [], "proxy": []}
        for _ in range(args.requests):
            for name, client in paths.items():
                cached_ttfa[name].append(ttfa(client, cached, "mp3") * 1000)
                started = time.perf_counter()
                client.get("/speak_as/jm_kumo", params=params).raise_for_status()
                hits[name].append((time.perf_counter() - started) * 1000)

    result: dict[str, object] = {
        "ttfa_direct_median_ms": statistics.median(ttfas["direct"]) * 1000,
        "ttfa_proxy_median_ms": statistics.median(ttfas["proxy"]) * 1000,
        "ttfa_difference_median_ms": statistics.median(differences),
        "ttfa_difference_p90_ms": percentile(differences, 0.9),
        "rounds": args.rounds,
    }
    for label, measured in (("cached_stream_ttfa", cached_ttfa), ("cache_hit", hits)):
        for name, timings in measured.items():
            result[f"{label}_{name}_p50_ms"] = statistics.median(timings)
            result[f"{label}_{name}_p99_ms"] = percentile(timings, 0.99)
    result["requests"] = args.requests
    save("proxy", result)


if __name__ == "__main__":
    main()
