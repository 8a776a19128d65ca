"""What the ElevenLabs engine adds (issue 18): time to first byte through voxclone over the upstream's own,
and proof that cache hits make no upstream call.

    .venv/bin/python bench/elevenlabs.py [--rounds 40] [--hits 20]

Two voxclone server processes on 127.0.0.1: the upstream (with an API key, speaking ElevenLabs' API, its
voice the few-KB tone model tests/make_tone_model.py writes, so its own first byte takes milliseconds)
and the server measured, with VOXCLONE_ELEVENLABS_API_KEY and _URL pointing at the upstream, which
lists the upstream's voices as `elevenlabs-*`. Each round streams a fresh sentence (never cached
anywhere) as pcm_24000 from the upstream directly and another through voxclone, order alternating:
time to the first body byte, medians of both and of the per-round difference. Then --hits requests of
one sentence already in voxclone's cache, counting the upstream's stream requests before and after
(its /metrics). Writes bench/out/elevenlabs.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from server import ServerProcess, save

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from make_tone_model import write as write_tone_model

KEY = "bench-upstream-key"
TONE = "bench_tone"
STREAM_ROUTE = 'route="/v1/text-to-speech/{voice_id}/stream"'


def first_byte(client: httpx.Client, voice: str, text: str) -> float:
    started = time.perf_counter()
    with client.stream(
        "POST", f"/v1/text-to-speech/{voice}/stream?output_format=pcm_24000", json={"text": text}
    ) as response:
        response.raise_for_status()
        chunks = response.iter_bytes()
        next(chunks)
        elapsed = time.perf_counter() - started
        for _ in chunks:  # drain, so the next request starts on idle servers
            pass
    return elapsed


def upstream_streams(upstream: httpx.Client) -> float:
    lines = upstream.get("/metrics").text.splitlines()
    return sum(
        float(line.split()[-1]) for line in lines if line.startswith("voxclone_requests_total") and STREAM_ROUTE in line
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--hits", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tone = write_tone_model(Path(tmp) / "bench.tone.npz")  # its voice: bench_tone
        common = {
            "VOXCLONE_EXTRA_VOICE_PATHS": str(tone),
            "VOXCLONE_DEFAULT_VOICE": TONE,
            "VOXCLONE_DISABLED_ENGINES": "kokoro,piper",
        }
        with ServerProcess(**common, VOXCLONE_API_KEYS=KEY) as up:
            env = {**common, "VOXCLONE_ELEVENLABS_API_KEY": KEY, "VOXCLONE_ELEVENLABS_URL": up.url}
            with (
                ServerProcess(**env) as server,
                httpx.Client(base_url=up.url, headers={"xi-api-key": KEY}, timeout=60) as upstream,
                httpx.Client(base_url=server.url, timeout=60) as local,
            ):
                remote = f"elevenlabs-{TONE}"
                deadline = time.monotonic() + 30
                while local.get(f"/v1/voices/{remote}").status_code != 200:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the upstream's voices never appeared")
                    time.sleep(0.2)
                first_byte(upstream, TONE, "Warm up the upstream.")
                first_byte(local, remote, "Warm up the path through voxclone.")
                direct, through = [], []
                for n in range(args.rounds):
                    pairs = [("direct", upstream, TONE), ("through", local, remote)]
                    for name, client, voice in pairs if n % 2 == 0 else reversed(pairs):
                        took = first_byte(client, voice, f"Round {n} {name}: the keeper lit the lamp at dusk.")
                        (direct if name == "direct" else through).append(took * 1000)
                hit_text = "A sentence heard many times."
                first_byte(local, remote, hit_text)
                before = upstream_streams(upstream)
                hits = [first_byte(local, remote, hit_text) * 1000 for _ in range(args.hits)]
                after = upstream_streams(upstream)
    added = [t - d for t, d in zip(through, direct, strict=True)]
    save(
        "elevenlabs",
        {
            "rounds": args.rounds,
            "upstream_first_byte_ms_median": round(statistics.median(direct), 1),
            "through_voxclone_first_byte_ms_median": round(statistics.median(through), 1),
            "added_first_byte_ms_median": round(statistics.median(added), 1),
            "added_first_byte_ms_p90": round(sorted(added)[int(0.9 * (len(added) - 1))], 1),
            "cache_hits": args.hits,
            "cache_hit_first_byte_ms_median": round(statistics.median(hits), 1),
            "upstream_calls_during_cache_hits": after - before,
        },
    )


if __name__ == "__main__":
    main()
