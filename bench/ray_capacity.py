"""Throughput and time to first audio per synthesis replica at 1, 2 and 4 concurrent streams, and the
capacity model the README states from them (issue 21).

    .venv/bin/python bench/ray_capacity.py [--seconds 40] [--replicas 1] [--single]

Against `voxclone serve --ray --replicas R` (a local Ray cluster; or the single process with --single),
default voice jm_kumo, streamed PCM, the audio cache off: for each level c of 1, 2 and 4 streams per replica, c x R clients
each speak distinct conversational turns (one or two sentences, as a voice agent says them) back to back
for --seconds. Throughput = characters of the turns completed per wall second; TTFA p95 over the turns;
real time = seconds of audio made per wall second. Writes bench/out/ray_capacity.json with the model:
a conversational stream needs `rate x duty` characters a second (the voice's speaking rate, measured
here, times the share of a conversation the agent talks, 0.5), so one replica carries
throughput / (rate x duty) streams, at the highest level whose TTFA p95 stays under --ttfa-bound.
"""

from __future__ import annotations

import argparse
import itertools
import math
import threading
import time

import httpx
from server import ServerProcess, save

VOICE = "jm_kumo"
RATE = 24_000
DUTY = 0.5  # the share of a conversation the agent is speaking
TURNS = [
    "Sure, I can help with that.",
    "Your order shipped this morning and should arrive on Thursday.",
    "I'm sorry to hear that. Let me check what went wrong with the delivery.",
    "The appointment is booked for ten thirty. Would you like a reminder the day before?",
    "Great question. The short answer is yes, but there is one thing to keep in mind.",
    "Thanks for waiting. I found two flights that leave after six in the evening.",
]


def turns(client_id: int):
    for n in itertools.count():
        yield f"Caller {client_id}, turn {n}. {TURNS[(n + client_id) % len(TURNS)]}"


def client_loop(url: str, client_id: int, until: float, out: list[dict]) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for text in turns(client_id):
            if time.monotonic() >= until:
                return
            started = time.perf_counter()
            first, size = None, 0
            with client.stream(
                "POST", f"/v1/text-to-speech/{VOICE}/stream?output_format=pcm_24000", json={"text": text}
            ) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    if chunk and first is None:
                        first = time.perf_counter() - started
                    size += len(chunk)
            out.append({"chars": len(text), "ttfa": first, "audio_s": size / 2 / RATE, "done_at": time.monotonic()})


def level(url: str, clients: int, seconds: float) -> dict[str, float]:
    out: list[dict] = []
    started = time.monotonic()
    until = started + seconds
    threads = [threading.Thread(target=client_loop, args=(url, i + 1000 * clients, until, out)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = max(r["done_at"] for r in out) - started
    ttfas = sorted(r["ttfa"] for r in out)
    return {
        "clients": clients,
        "turns": len(out),
        "chars_per_s": sum(r["chars"] for r in out) / wall,
        "audio_s_per_s": sum(r["audio_s"] for r in out) / wall,
        "ttfa_p50_s": ttfas[len(ttfas) // 2],
        "ttfa_p95_s": ttfas[max(0, math.ceil(0.95 * len(ttfas)) - 1)],
        "speaking_chars_per_s": sum(r["chars"] for r in out) / sum(r["audio_s"] for r in out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--single", action="store_true", help="The single process instead of Ray Serve.")
    parser.add_argument("--ttfa-bound", type=float, default=1.0, help="Highest acceptable TTFA p95 (s) for the model.")
    args = parser.parse_args()
    serve_args = () if args.single else ("--ray", "--replicas", str(args.replicas))
    levels = []
    # No audio cache: every piece of every turn is spoken (turns repeat their sentences).
    with ServerProcess(*serve_args, startup_s=600, VOXCLONE_CACHE_SIZE_BYTES="0") as server:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            client.post(f"/v1/text-to-speech/{VOICE}", json={"text": "Warming up."}).raise_for_status()
        for per_replica in (1, 2, 4):
            result = level(server.url, per_replica * args.replicas, args.seconds)
            result["streams_per_replica"] = per_replica
            levels.append(result)
            print(result, flush=True)
    rate = sum(lv["speaking_chars_per_s"] for lv in levels) / len(levels)
    usable = [lv for lv in levels if lv["ttfa_p95_s"] <= args.ttfa_bound] or levels[:1]
    best = max(usable, key=lambda lv: lv["chars_per_s"])
    per_replica_streams = best["chars_per_s"] / args.replicas / (rate * DUTY)
    model = {
        "speaking_rate_chars_per_s": rate,
        "duty": DUTY,
        "ttfa_bound_s": args.ttfa_bound,
        "level_used": best["streams_per_replica"],
        "replica_chars_per_s": best["chars_per_s"] / args.replicas,
        "streams_per_replica": per_replica_streams,
        "replicas_for_100": math.ceil(100 / per_replica_streams),
        "replicas_for_1000": math.ceil(1000 / per_replica_streams),
    }
    save(
        "ray_capacity_single" if args.single else "ray_capacity",
        {"levels": levels, "model": model, "replicas": args.replicas},
    )


if __name__ == "__main__":
    main()
