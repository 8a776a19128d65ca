"""Generated and real speech for the watermark and consent benches, made once and kept under bench/out/.

Generated: 200 clips of 3-10 s from the server's own speech service (watermarking off, so each bench can
mark them itself and compare), spread over six voices: five Kokoro stock voices and Piper's `joe`.
Real: the LibriSpeech clips in ../shared/data (one per speaker, 16 kHz).

    PYTHONPATH=. .venv/bin/python bench/speech_corpus.py [--clips 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from voxclone.audio import OutputFormat
from voxclone.runtime import Runtime
from voxclone.settings import Settings
from voxclone.speech import SpeechRequest

OUT = Path(__file__).parent / "out" / "corpus"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech_train-clean-100"
VOICES = ("jm_kumo", "jf_tebukuro", "jf_gongitsune", "jf_nezumi", "jf_alpha", "joe")
SENTENCES = (
    "The ferry leaves the harbour at seven, so we should pack tonight.",
    "Please remember to water the tomatoes before the weekend.",
    "A cold wind came down from the hills and rattled the windows.",
    "Our meeting moved to Thursday afternoon in the small room.",
    "She poured the tea, sat by the fire, and opened the old letter.",
    "Nobody expected the quiet student to win the chess tournament.",
    "The library closes early on holidays, so bring the books back soon.",
    "He fixed the bicycle chain with a spoon and a piece of wire.",
    "Thick fog rolled over the bay while the boats waited at the pier.",
    "If the train is late again, I will take the bus instead.",
    "The recipe calls for two eggs, a cup of flour, and a pinch of salt.",
    "Children ran across the field chasing a bright red kite.",
    "Turn left at the bakery and walk straight until you see the fountain.",
    "The museum opened a new room full of maps and compasses.",
    "We heard thunder in the distance and hurried back to the car.",
    "Her grandfather kept bees behind the barn for forty years.",
    "The report is due on Monday, but the figures are not ready.",
    "A small dog followed us all the way home from the market.",
    "The pilot said we would land twenty minutes ahead of schedule.",
    "Please speak clearly after the tone and leave your number.",
    "The garden looked different after a night of heavy rain.",
    "They painted the kitchen yellow and hung new curtains.",
    "I found my keys in the pocket of the coat I wore yesterday.",
    "The orchestra tuned their instruments while the hall filled up.",
    "Fresh bread smells better than almost anything in the world.",
    "The river was too high to cross, so we camped on the bank.",
    "Our neighbour plays the piano every evening at nine.",
    "The hotel offered us a room with a view of the mountains.",
    "Write the answer on the board and explain how you found it.",
    "A gentle breeze carried the scent of pine through the valley.",
    "The engineer checked every bolt before the bridge opened.",
    "My sister moved to a village where everyone knows each other.",
    "The shop on the corner sells the best apples in town.",
    "We watched the sun set behind the lighthouse on the cliff.",
    "The doctor asked him to rest for a week and drink more water.",
    "Lanterns hung from the trees along the path to the lake.",
    "The new software update fixed the problem with the printer.",
    "An old map showed a tunnel under the castle walls.",
    "The students cheered when the teacher cancelled the test.",
    "He whistled a cheerful tune as he walked to the station.",
)


def texts(count: int, seed: int = 7) -> list[str]:
    """`count` different texts of one to three sentences (about 3-10 s of speech)."""
    rng = random.Random(seed)
    made: list[str] = []
    seen: set[str] = set()
    while len(made) < count:
        n = rng.choice((1, 1, 2, 2, 3))
        text = " ".join(rng.sample(SENTENCES, n))
        if text not in seen and len(text) < 190:
            seen.add(text)
            made.append(text)
    return made


def generated(limit: int | None = None) -> list[tuple[dict, np.ndarray, int]]:
    """The generated clips: (metadata, audio, rate)."""
    index = json.loads((OUT / "generated.json").read_text())
    rows = index[:limit] if limit else index
    out = []
    for row in rows:
        audio, rate = soundfile.read(OUT / row["file"], dtype="float32")
        out.append((row, audio, rate))
    return out


def real(limit: int | None = None) -> list[tuple[str, np.ndarray, int]]:
    files = sorted(REAL.glob("*.flac"))[:limit] if limit else sorted(REAL.glob("*.flac"))
    return [(p.stem, *soundfile.read(p, dtype="float32")) for p in files]


def make(count: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index_path = OUT / "generated.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else []
    done = {row["file"] for row in index}
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(Settings(data_dir=Path(tmp), watermark=False))
        for i, text in enumerate(texts(count + 80)):
            name = f"gen-{i:03d}.wav"
            if len(index) >= count:
                break
            if name in done:
                continue
            voice = VOICES[i % len(VOICES)]
            request = SpeechRequest(text=text, voice=voice, format=OutputFormat("wav"))
            chunk = asyncio.run(runtime.speech.audio(request, use_cache=False))
            if not 3.0 <= chunk.seconds <= 10.5:
                continue
            soundfile.write(OUT / name, chunk.samples, chunk.sample_rate, subtype="FLOAT")
            index.append({"file": name, "voice": voice, "text": text, "seconds": round(chunk.seconds, 2)})
            index_path.write_text(json.dumps(index, indent=1))
            print(f"{name} {voice} {chunk.seconds:.1f} s", flush=True)
        runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=200)
    make(parser.parse_args().clips)
