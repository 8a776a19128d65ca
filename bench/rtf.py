"""Real-time factor of each engine, warm, median of 5 (issue 2: kokoro <= 0.25, piper <= 0.05).

    .venv/bin/python bench/rtf.py [--runs 5] [--voices jm_kumo,joe]
    VOXCLONE_KOKORO_RUNTIME=onnxruntime .venv/bin/python bench/rtf.py   # the int8 onnxruntime path

RTF = synthesis wall seconds / seconds of audio produced, through the speech service (text splitting,
engine, filters, pauses; the piece cache bypassed), not the bare model call. Prints a table and writes
bench/out/rtf.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from voxclone.audio import OutputFormat
from voxclone.runtime import Runtime
from voxclone.settings import Settings
from voxclone.speech import SpeechRequest

TEXT = (
    "The old lighthouse keeper climbed the stairs every evening, lit the great lamp, and watched the ships "
    "pass safely through the narrow channel below."
)


def rtf(runtime: Runtime, voice: str, runs: int) -> dict[str, float]:
    request = SpeechRequest(text=TEXT, voice=voice, format=OutputFormat("wav"))
    asyncio.run(runtime.speech.audio(request, use_cache=False))  # warm-up
    factors, seconds = [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        audio = asyncio.run(runtime.speech.audio(request, use_cache=False))
        elapsed = time.perf_counter() - started
        seconds = audio.seconds
        factors.append(elapsed / seconds)
    return {"median_rtf": statistics.median(factors), "min_rtf": min(factors), "audio_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--voices", default="jm_kumo,joe", help="comma-separated voices to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(Settings(data_dir=Path(tmp)))
        runtime.load()
        results = {voice: rtf(runtime, voice, args.runs) for voice in args.voices.split(",")}
        if "jm_kumo" in results:
            print(f"Kokoro runtime: {runtime.engines['kokoro'].runtime}")  # type: ignore[attr-defined]
        runtime.close()
    for voice, r in results.items():
        print(
            f"{voice:10s} median RTF {r['median_rtf']:.3f}  (min {r['min_rtf']:.3f}, {r['audio_seconds']:.1f} s of audio)"
        )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "rtf.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
