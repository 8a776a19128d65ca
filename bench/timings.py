"""Word timings: how close the returned word start times are to Whisper's on the same audio (issue 19).

    .venv/bin/python bench/timings.py [--voice jm_kumo]

The 10 sentences of bench/listening.py, each spoken through the with-timestamps path (voxclone.timestamps,
the engine's own durations); Whisper base's word timestamps on that audio are matched word by word,
and the median absolute difference of the start times is the figure. Also: whether the character
alignment covers the audio (the last character's end against the audio's length).
Writes bench/out/timings.json.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import statistics

import numpy as np
from listening import SENTENCES, runtime
from server import save

from voxclone.asr import TranscribeOptions, normalise_words
from voxclone.audio import OutputFormat
from voxclone.speech import SpeechRequest


def _word_starts(characters: list[str], starts: list[float]) -> list[tuple[str, float]]:
    words, current, begin = [], "", 0.0
    for char, start in zip([*characters, " "], [*starts, 0.0], strict=True):
        if char.isalnum() or char in "'":
            if not current:
                begin = start
            current += char
        elif current:
            words.append((current.lower(), begin))
            current = ""
    return words


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voice", default="jm_kumo")
    args = parser.parse_args()
    rt = runtime()
    judge = rt.listeners.transcriber_for("base")
    differences, coverage = [], []
    for text in SENTENCES:
        request = SpeechRequest(text=text, voice=args.voice, format=OutputFormat("pcm", 24_000))
        timed = asyncio.run(rt.timed.clip(request))
        audio = np.frombuffer(timed.audio, "<i2").astype(np.float32) / 32768.0
        alignment = timed.alignment.as_http()
        ours = _word_starts(alignment["characters"], alignment["character_start_times_seconds"])
        heard = judge.transcript(audio, 24_000, TranscribeOptions(language="en", words=True, vad=False))
        theirs = [(normalise_words(w.word)[0], w.start) for w in heard.words if normalise_words(w.word)]
        pairs = difflib.SequenceMatcher(None, [w for w, _ in ours], [w for w, _ in theirs], autojunk=False)
        matched = [
            abs(ours[m.a + k][1] - theirs[m.b + k][1]) for m in pairs.get_matching_blocks() for k in range(m.size)
        ]
        differences += matched
        coverage.append(round(alignment["character_end_times_seconds"][-1] - audio.size / 24_000, 4))
        print(
            f"{len(matched)}/{len(ours)} words matched: {[(w, round(t, 2)) for w, t in ours]} {[(w, round(t, 2)) for w, t in theirs]}",
            flush=True,
        )
    rt.close()
    save(
        "timings",
        {
            "voice": args.voice,
            "sentences": len(SENTENCES),
            "words_compared": len(differences),
            "median_abs_start_difference_s": round(statistics.median(differences), 3),
            "p90_abs_start_difference_s": round(float(np.percentile(differences, 90)), 3),
            "last_character_end_minus_audio_length_s": coverage,
        },
    )


if __name__ == "__main__":
    main()
