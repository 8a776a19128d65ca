"""Real-time factor of each engine, warm, median of 5 (issue 2: kokoro <= 0.25, piper <= 0.05).

    .venv/bin/python bench/rtf.py [--runs 5]
    VOXCLONE_KOKORO_RUNTIME=onnxruntime .venv/bin/python bench/rtf.py   # the int8 onnxruntime path

RTF = synthesis wall seconds / seconds of audio produced, through `Speaker` (text splitting, engine,
pauses), not the bare model call. Prints a table and writes bench/out/rtf.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from voxclone.audio import OutputFormat
from voxclone.settings import Settings
from voxclone.synthesis import Speaker, SpeechRequest

TEXT = (
    "The old lighthouse keeper climbed the stairs every evening, lit the great lamp, and watched the ships "
    "pass safely through the narrow channel below."
)


def rtf(speaker: Speaker, voice: str, runs: int) -> dict[str, float]:
    plan = speaker.plan(SpeechRequest(text=TEXT, voice=voice, format=OutputFormat("wav")))
    np.concatenate(list(speaker.pieces_audio(plan)))  # warm-up
    factors, seconds = [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        audio = np.concatenate(list(speaker.pieces_audio(plan)))
        elapsed = time.perf_counter() - started
        seconds = audio.size / plan.source_rate
        factors.append(elapsed / seconds)
    return {"median_rtf": statistics.median(factors), "min_rtf": min(factors), "audio_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        speaker = Speaker.from_settings(Settings(data_dir=Path(tmp)))
        speaker.load()
        results = {voice: rtf(speaker, voice, args.runs) for voice in ("jm_kumo", "joe")}
        print(f"Kokoro runtime: {speaker.engines['kokoro'].runtime}")
    for voice, r in results.items():
        print(f"{voice:10s} median RTF {r['median_rtf']:.3f}  (min {r['min_rtf']:.3f}, {r['audio_seconds']:.1f} s of audio)")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "rtf.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
