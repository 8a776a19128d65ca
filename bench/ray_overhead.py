"""What the Ray Serve path costs against the single process, on the same machine (issue 21).

    .venv/bin/python bench/ray_overhead.py [--requests 300] [--rounds 5] [--pairs 1] [--database-url URL]

Two servers in turn, each a child process on 127.0.0.1 with its own data dir and the same library
backend (the data dir's SQLite, or --database-url for both): `voxclone serve` and `voxclone serve --ray
--replicas 1` (a local Ray cluster: Serve's HTTP proxy, one API replica, one synthesis replica holding
Kokoro, one enrolment replica). --pairs runs the two in turn that many times: a shared VM's speed
drifts by more than the difference measured, so each Ray run is compared with the single-process run
just before it, and the overhead is the median of those differences. Default voice jm_kumo. For each:
- cache-hit latency: GET /speak_as of one sentence, --requests times after one fill, keep-alive;
- TTFA: streamed PCM of --rounds distinct 600-character paragraphs, median (and the worst);
- RTF: --rounds distinct sentences spoken whole (bypass_cache), wall seconds over audio seconds, median.
Writes bench/out/ray_overhead.json. The Ray path counts the rate limit in the database (every replica
shares it); the single process counts in memory, as each does by default.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from latency import paragraph, stream
from server import ServerProcess, save

VOICE = "jm_kumo"
SENTENCES = [
    "A quiet morning settled over the harbour as the first boats went out.",
    "She folded the letter twice and put it in the drawer with the others.",
    "Nobody expected the train to be on time, and yet there it was.",
    "The recipe called for three eggs, but he only had two and a hopeful attitude.",
    "Rain drummed on the roof of the old barn all through the night.",
    "They counted the stars until the clouds came in from the west.",
    "His grandmother kept every key she had ever owned in a tin box.",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(q * len(ordered)) - 1)]


def measure(server: ServerProcess, requests: int, rounds: int, tag: str) -> dict[str, float]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        stream(client, VOICE, "Warming up the engine once.")
        params = {"prompt": f"A cached sentence, served again and again ({tag})."}
        client.get(f"/speak_as/{VOICE}", params=params).raise_for_status()
        hits = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(f"/speak_as/{VOICE}", params=params).raise_for_status()
            hits.append((time.perf_counter() - started) * 1000)
        ttfa = [float(stream(client, VOICE, paragraph(1000 + n) + f" {tag}")["ttfa"]) for n in range(rounds)]
        rtf = []
        for n in range(rounds):
            text = f"{SENTENCES[n % len(SENTENCES)]} ({tag} {n})"
            started = time.perf_counter()
            response = client.get(f"/speak_as/{VOICE}", params={"prompt": text, "bypass_cache": "true"})
            response.raise_for_status()
            wall = time.perf_counter() - started
            audio_s = (len(response.content) - 44) / 2 / 24_000  # 16-bit mono WAV at 24 kHz
            rtf.append(wall / audio_s)
    return {
        "cache_hit_p50_ms": statistics.median(hits),
        "cache_hit_p99_ms": percentile(hits, 0.99),
        "ttfa_median_s": statistics.median(ttfa),
        "ttfa_max_s": max(ttfa),
        "rtf_median": statistics.median(rtf),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=1, help="Runs of the two servers in turn.")
    parser.add_argument(
        "--database-url", default=None, help="A PostgreSQL library for both (default: each its SQLite)."
    )
    args = parser.parse_args()
    env = {"VOXCLONE_DATABASE_URL": args.database_url} if args.database_url else {}
    pairs = []
    for n in range(args.pairs):
        with ServerProcess(**env) as single:
            on_one = measure(single, args.requests, args.rounds, f"single {n}")
            print("single process:", on_one, flush=True)
        with ServerProcess("--ray", "--replicas", "1", startup_s=600, **env) as on_ray:
            on_ray_serve = measure(on_ray, args.requests, args.rounds, f"ray {n}")
            print("ray serve:", on_ray_serve, flush=True)
        pairs.append({"single": on_one, "ray": on_ray_serve, "overhead": overhead(on_one, on_ray_serve)})
        print("overhead:", pairs[-1]["overhead"], flush=True)
    summary = {key: statistics.median(p["overhead"][key] for p in pairs) for key in pairs[0]["overhead"]}
    summary["ray_cache_hit_p99_ms"] = statistics.median(p["ray"]["cache_hit_p99_ms"] for p in pairs)  # target <= 25
    save("ray_overhead", {"pairs": pairs, "overhead": summary, "backend": "postgresql" if env else "sqlite"})


def overhead(single: dict[str, float], ray: dict[str, float]) -> dict[str, float]:
    """What the Ray path adds to the single process's figures."""
    return {
        "cache_hit_p50_ms": ray["cache_hit_p50_ms"] - single["cache_hit_p50_ms"],
        "cache_hit_p99_ms": ray["cache_hit_p99_ms"] - single["cache_hit_p99_ms"],
        "ttfa_median_ms": 1000 * (ray["ttfa_median_s"] - single["ttfa_median_s"]),
        "rtf_ratio": ray["rtf_median"] / single["rtf_median"],
    }


if __name__ == "__main__":
    main()
