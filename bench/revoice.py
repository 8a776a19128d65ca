"""Speech to speech: intelligibility and speed (issue 19).

    .venv/bin/python bench/revoice.py [--clips 20] [--voice jm_kumo]

For each LibriSpeech clip: what Whisper base hears in it (its sentences) is said again in the voice
(voxclone.revoice, pitch contour on); Whisper base then transcribes the result, and its word error rate
against the input's transcript is the figure (the issue asks <= 0.10). RTF: wall seconds of the whole
revoice (hearing included) per second of input. Also the output's length against the input's.
Writes bench/out/revoice.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from listening import DATA, runtime
from server import save

from voxclone.asr import TranscribeOptions, word_error_rate
from voxclone.audio import ANALYSIS_RATE, decode
from voxclone.revoice import RevoiceOptions


async def _one(rt, samples, options):  # type: ignore[no-untyped-def]
    found = await rt.revoicer.hear(samples, options)
    return found, await rt.revoicer.revoice(samples, found, options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--voice", default="jm_kumo")
    args = parser.parse_args()
    rt = runtime(transcription_model="base")
    judge = rt.listeners.transcriber_for("base")
    options = RevoiceOptions(voice=args.voice)
    rows = []
    for path in sorted(DATA.glob("*.flac"))[: args.clips]:
        samples = decode(path.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=60)
        started = time.perf_counter()
        found, out = asyncio.run(_one(rt, samples, options))
        seconds = time.perf_counter() - started
        said = " ".join(s.text for s in found)
        heard = judge.transcript(out.samples, out.sample_rate, TranscribeOptions(language="en")).text
        rows.append(
            {
                "clip": path.stem,
                "wer": round(word_error_rate(said, heard), 4),
                "rtf": round(seconds / (samples.size / ANALYSIS_RATE), 3),
                "length_error_s": round(out.seconds - samples.size / ANALYSIS_RATE, 3),
            }
        )
        print(rows[-1], flush=True)
    rt.close()
    save(
        "revoice",
        {
            "voice": args.voice,
            "clips": len(rows),
            "wer_mean": round(statistics.mean(r["wer"] for r in rows), 4),
            "wer_median": round(statistics.median(r["wer"] for r in rows), 4),
            "rtf_median": round(statistics.median(r["rtf"] for r in rows), 3),
            "length_error_max_s": max(abs(r["length_error_s"]) for r in rows),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
