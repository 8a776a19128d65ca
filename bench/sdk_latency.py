"""First audio through each official SDK's streaming call against a raw HTTP client (issue 23).

    .venv/bin/python bench/sdk_latency.py [--rounds 15]

Against a real server process on 127.0.0.1 (bench/server.py, an API key on, voice jm_kumo, pcm at
24 kHz), eight clients interleaved round by round in a rotating order, each timed from its call to
its first non-empty chunk (every stream is then read to its end):
- OpenAI route, streamed (`stream: true`): raw httpx, Python `openai` (with_streaming_response),
  plain fetch in node, npm `openai`;
- ElevenLabs route (/stream): raw httpx, Python `elevenlabs` (text_to_speech.stream), plain fetch in
  node, npm `@elevenlabs/elevenlabs-js` (textToSpeech.stream).
Two passes: `fresh`, a new take of the same two sentences per request (real synthesis: the time
to first audio a user hears), and `cached`, the same take every time (the server answers at once,
so what remains is what each client adds). Reports medians, and each SDK's median paired
difference from raw httpx on the same route (and from node's fetch for the JS SDKs).
Needs node and `npm ci` in tests/sdk/js. Writes bench/out/sdk_latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
from elevenlabs.client import ElevenLabs
from server import ServerProcess, save

KEY = "bench-sdk-key"
Run = Callable[[str], tuple[float, float]]
TEXT = "Hello there, and welcome to the show. We have a great deal to talk about today."


def first_chunk(started: float, chunks: Iterator[bytes]) -> tuple[float, float]:
    """Seconds from `started` (taken before the call that opened the stream) to its first non-empty
    chunk and to its end; every chunk is read."""
    first = None
    for chunk in chunks:
        if chunk and first is None:
            first = time.perf_counter() - started
    assert first is not None, "no audio came back"
    return first, time.perf_counter() - started


class Clients:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)
        self.openai = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        self.elevenlabs = ElevenLabs(base_url=url, api_key=KEY)
        script = Path(__file__).with_suffix(".mjs")
        self.node = subprocess.Popen(
            ["node", str(script), url, KEY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def httpx_openai(self, text: str) -> tuple[float, float]:
        body = {"model": "tts-1", "voice": "jm_kumo", "input": text, "response_format": "pcm", "stream": True}
        started = time.perf_counter()
        with self.http.stream("POST", "/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
            return first_chunk(started, r.iter_bytes())

    def python_openai(self, text: str) -> tuple[float, float]:
        speech = self.openai.audio.speech.with_streaming_response
        started = time.perf_counter()
        with speech.create(
            model="tts-1", voice="jm_kumo", input=text, response_format="pcm", extra_body={"stream": True}
        ) as r:
            return first_chunk(started, r.iter_bytes())

    def httpx_elevenlabs(self, text: str) -> tuple[float, float]:
        url = "/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000"
        started = time.perf_counter()
        with self.http.stream("POST", url, json={"text": text}, headers={"xi-api-key": KEY}) as r:
            return first_chunk(started, r.iter_bytes())

    def python_elevenlabs(self, text: str) -> tuple[float, float]:
        started = time.perf_counter()
        return first_chunk(
            started, self.elevenlabs.text_to_speech.stream("jm_kumo", text=text, output_format="pcm_24000")
        )

    def in_node(self, client: str) -> Callable[[str], tuple[float, float]]:
        def run(text: str) -> tuple[float, float]:
            assert self.node.stdin and self.node.stdout
            self.node.stdin.write(json.dumps({"client": client, "text": text}) + "\n")
            self.node.stdin.flush()
            answer = json.loads(self.node.stdout.readline())
            return float(answer["first_s"]), float(answer["total_s"])

        return run

    def close(self) -> None:
        if self.node.stdin:
            self.node.stdin.close()
        self.node.wait(timeout=30)
        self.http.close()


def measure(runs: dict[str, Run], rounds: int, text: Callable[[int], str]) -> dict[str, list[tuple[float, float]]]:
    """`rounds` rounds, every client once per round in a rotating order; (first chunk, end) per request."""
    names = list(runs)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    take = 0
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            take += 1
            times[name].append(runs[name](text(take)))
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1][0] * 1000:.0f}" for n in names), flush=True)
    return times


def summary(times: dict[str, list[tuple[float, float]]]) -> dict[str, object]:
    def paired(name: str, baseline: str) -> float:
        return round(
            statistics.median(a[0] - b[0] for a, b in zip(times[name], times[baseline], strict=True)) * 1000, 1
        )

    return {
        "median_first_chunk_ms": {n: round(statistics.median(t[0] for t in v) * 1000, 1) for n, v in times.items()},
        "median_end_ms": {n: round(statistics.median(t[1] for t in v) * 1000, 1) for n, v in times.items()},
        "sdk_minus_raw_median_paired_ms": {
            "Python openai - httpx": paired("Python openai", "httpx (OpenAI route)"),
            "npm openai - httpx": paired("npm openai", "httpx (OpenAI route)"),
            "npm openai - node fetch": paired("npm openai", "node fetch (OpenAI route)"),
            "Python elevenlabs - httpx": paired("Python elevenlabs", "httpx (ElevenLabs route)"),
            "npm elevenlabs - httpx": paired("npm @elevenlabs/elevenlabs-js", "httpx (ElevenLabs route)"),
            "npm elevenlabs - node fetch": paired("npm @elevenlabs/elevenlabs-js", "node fetch (ElevenLabs route)"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with ServerProcess(VOXCLONE_API_KEYS=KEY) as server:
        c = Clients(server.url)
        runs: dict[str, Run] = {
            "httpx (OpenAI route)": c.httpx_openai,
            "Python openai": c.python_openai,
            "node fetch (OpenAI route)": c.in_node("fetch-openai"),
            "npm openai": c.in_node("js-openai"),
            "httpx (ElevenLabs route)": c.httpx_elevenlabs,
            "Python elevenlabs": c.python_elevenlabs,
            "node fetch (ElevenLabs route)": c.in_node("fetch-elevenlabs"),
            "npm @elevenlabs/elevenlabs-js": c.in_node("js-elevenlabs"),
        }
        for name, run in runs.items():  # warm every client, its connection, and the cached take
            run(f"Warming up {name}.")
            run(TEXT)
        print("fresh synthesis:")
        fresh = measure(runs, args.rounds, lambda take: f"{TEXT} That was take {take}.")
        print("from the cache:")
        cached = measure(runs, args.rounds, lambda take: TEXT)
        c.close()
    save("sdk_latency", {"rounds": args.rounds, "text": TEXT, "fresh": summary(fresh), "cached": summary(cached)})


if __name__ == "__main__":
    main()
