"""Transcription speed and accuracy of Whisper tiny.en and base (issue 19).

    .venv/bin/python bench/transcription.py [--clips 10]

- Word error rate on speech whose words are known: the 10 sentences of bench/listening.py spoken by
  two stock voices (jm_kumo, jf_tebukuro);
- real-time factor (seconds of work per second of audio) on those and on LibriSpeech clips;
- on the LibriSpeech clips, how far tiny.en's transcript is from base's (their disagreement, not a WER:
  the clips' reference texts would first have to be checked by ear).
Greedy decoding, Silero VAD on, int8, the machine's threads. Writes bench/out/transcription.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import numpy as np
from listening import DATA, SENTENCES, runtime, timed
from server import save

from voxclone.asr import TranscribeOptions, Transcriber, word_error_rate
from voxclone.audio import ANALYSIS_RATE, OutputFormat, decode, resample
from voxclone.speech import SpeechRequest


def _transcribe(
    transcriber: Transcriber, clips: list[np.ndarray], options: TranscribeOptions
) -> tuple[list[str], float]:
    """Each clip's text, and the seconds of work per second of audio over all of them."""
    texts, work = [], 0.0
    for samples in clips:
        heard, seconds = timed(lambda samples=samples: transcriber.transcript(samples, ANALYSIS_RATE, options))
        texts.append(heard.text)
        work += seconds
    return texts, work / (sum(c.size for c in clips) / ANALYSIS_RATE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=10)
    args = parser.parse_args()
    rt = runtime()
    spoken = []
    for voice in ("jm_kumo", "jf_tebukuro"):
        for text in SENTENCES:
            chunk = asyncio.run(rt.speech.audio(SpeechRequest(text=text, voice=voice, format=OutputFormat("wav"))))
            spoken.append((text, resample(chunk.samples, chunk.sample_rate, ANALYSIS_RATE)))
    clips = [
        decode(p.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=60)
        for p in sorted(DATA.glob("*.flac"))[: args.clips]
    ]
    result: dict[str, object] = {}
    heard_clips: dict[str, list[str]] = {}
    for model in ("tiny.en", "base"):
        transcriber = rt.listeners.transcriber_for(model)
        transcriber.load()
        options = TranscribeOptions(language="en")
        texts, rtf = _transcribe(transcriber, [samples for _, samples in spoken], options)
        heard_clips[model], clip_rtf = _transcribe(transcriber, clips, options)
        result[model] = {
            "stock_voice_wer": round(
                statistics.mean(word_error_rate(t, h) for (t, _), h in zip(spoken, texts, strict=True)), 4
            ),
            "stock_voice_rtf": round(rtf, 3),
            "librispeech_rtf": round(clip_rtf, 3),
        }
        print(model, result[model], flush=True)
    result["librispeech_tiny_vs_base_disagreement"] = round(
        statistics.mean(
            word_error_rate(b, t) for b, t in zip(heard_clips["base"], heard_clips["tiny.en"], strict=True)
        ),
        4,
    )
    result["sentences"], result["librispeech_clips"] = len(spoken), len(clips)
    rt.close()
    save("transcription", result)


if __name__ == "__main__":
    main()
