"""Time to first audio, underruns, fairness and sharing under concurrency (issue 4).

    .venv/bin/python bench/latency.py [--rounds 5]

Against a real server process on 127.0.0.1 (bench/server.py), default voice jm_kumo, streamed PCM:
- TTFA for a 600-character paragraph (median of --rounds distinct paragraphs) and, in the same run,
  the time the whole paragraph takes unstreamed (GET /speak_as with bypass_cache=true);
- underrun margin: with playback starting at the first chunk at real time, how early (>0) or late
  (<0) each later chunk arrived;
- 4 concurrent clients with different texts: completions and p95 TTFA over --rounds rounds;
- a client joining 3 streams already playing: its TTFA (earliest-deadline-first scheduling puts its
  first piece ahead of pieces the others need later);
- 8 identical concurrent requests: wall time relative to one request alone;
- Piper (voice joe) TTFA.
Writes bench/out/latency.json.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx
from server import ServerProcess, save

RATE = 24_000
BASE = (
    "The old lighthouse keeper climbed the narrow stairs every evening, lit the great lamp, and watched "
    "the fishing boats return through the channel below. Nobody in the village remembered a night when "
    "the light had failed, not even during the worst winter storms. He kept a small notebook of every "
    "ship that passed, its name and the time, and on quiet nights he read the old entries aloud. "
    "In spring, the children from the school came to visit, and he showed them how the lens turned. "
    "They always asked whether he was lonely up there, and he always laughed and said the sea was company."
)


def paragraph(n: int) -> str:
    text = f"Story {n}. {BASE}"
    return text[:600]


def stream(
    client: httpx.Client, voice: str, text: str, rate: int = RATE
) -> dict[str, float | list[tuple[float, float]]]:
    """Stream PCM; returns TTFA and (arrival time, seconds of audio) per chunk."""
    started = time.perf_counter()
    arrivals: list[tuple[float, float]] = []
    fmt = f"pcm_{rate}"
    with client.stream("POST", f"/v1/text-to-speech/{voice}/stream?output_format={fmt}", json={"text": text}) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            if chunk:
                arrivals.append((time.perf_counter() - started, len(chunk) / 2 / rate))
    return {"ttfa": arrivals[0][0], "total": time.perf_counter() - started, "arrivals": arrivals}


def underrun_margin(arrivals: list[tuple[float, float]]) -> float:
    """Smallest (chunk needed at - chunk arrived at) when playback starts with the first chunk."""
    start, played, margin = arrivals[0][0], 0.0, float("inf")
    for arrived, seconds in arrivals:
        margin = min(margin, start + played - arrived)
        played += seconds
    return margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with ServerProcess() as server, httpx.Client(base_url=server.url, timeout=300) as client:
        stream(client, "jm_kumo", "Warming up the engine once.")
        ttfas, ratios, margins = [], [], []
        for n in range(args.rounds):
            s = stream(client, "jm_kumo", paragraph(n))
            started = time.perf_counter()
            client.get("/speak_as/jm_kumo", params={"prompt": paragraph(n), "bypass_cache": "true"}).raise_for_status()
            whole = time.perf_counter() - started
            ttfas.append(s["ttfa"])
            ratios.append(s["ttfa"] / whole)
            margins.append(underrun_margin(s["arrivals"]))  # type: ignore[arg-type]
            print(
                f"paragraph {n}: TTFA {s['ttfa']:.3f} s, unstreamed {whole:.2f} s, ratio {s['ttfa'] / whole:.3f}, underrun margin {margins[-1]:+.2f} s"
            )
        results["ttfa_600_chars_median_s"] = statistics.median(ttfas)
        results["ttfa_over_unstreamed_median"] = statistics.median(ratios)
        results["underrun_margin_min_s"] = min(margins)

        concurrent_ttfa, completed = [], 0
        for r in range(args.rounds):
            out: list[dict] = []
            threads = [
                threading.Thread(
                    target=lambda i=i, r=r, out=out: out.append(
                        stream(client, "jm_kumo", f"Client {i}, round {r}. {BASE[:300]}")
                    )
                )
                for i in range(4)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            completed += len(out)
            concurrent_ttfa += [o["ttfa"] for o in out]
        concurrent_ttfa.sort()
        results["concurrent4_completed"] = f"{completed}/{4 * args.rounds}"
        results["concurrent4_ttfa_p95_s"] = concurrent_ttfa[max(0, int(0.95 * len(concurrent_ttfa)) - 1)]
        results["concurrent4_ttfa_max_s"] = concurrent_ttfa[-1]
        print(f"4 clients: {completed} completed, TTFA p95 {results['concurrent4_ttfa_p95_s']:.3f} s")

        joining = []
        for r in range(args.rounds):
            busy = [
                threading.Thread(target=stream, args=(client, "jm_kumo", paragraph(100 + 3 * r + i))) for i in range(3)
            ]
            for t in busy:
                t.start()
            time.sleep(3.0)  # the three are past their first pieces and queueing later ones
            joining.append(stream(client, "jm_kumo", f"Latecomer {r}. {BASE[:200]}")["ttfa"])
            for t in busy:
                t.join()
        results["joining_busy3_ttfa_median_s"] = statistics.median(joining)
        results["joining_busy3_ttfa_max_s"] = max(joining)
        print(f"joining 3 busy streams: TTFA median {statistics.median(joining):.3f} s, max {max(joining):.3f} s")

        def whole_request(text: str) -> None:
            client.post(
                "/v1/audio/speech", json={"input": text, "voice": "jm_kumo", "response_format": "pcm"}
            ).raise_for_status()

        ratios8 = []
        for r in range(3):
            started = time.perf_counter()
            whole_request(f"One request alone, take {r}. {BASE[:200]}")
            one = time.perf_counter() - started
            text = f"Eight identical requests, take {r}. {BASE[:200]}"
            threads = [threading.Thread(target=whole_request, args=(text,)) for _ in range(8)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ratios8.append((time.perf_counter() - started) / one)
        results["identical8_cost_ratio_median"] = statistics.median(ratios8)
        print(f"8 identical: {results['identical8_cost_ratio_median']:.2f}x one request")

        stream(client, "joe", "Warming up Piper.", 22_050)
        piper = [stream(client, "joe", paragraph(n), 22_050)["ttfa"] for n in range(args.rounds)]
        results["piper_ttfa_median_s"] = statistics.median(piper)
        print(f"Piper TTFA median {results['piper_ttfa_median_s']:.3f} s")
    save("latency", results)


if __name__ == "__main__":
    main()
