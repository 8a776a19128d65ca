"""Write a tiny Piper voice (a 1 KB .onnx and its .onnx.json) for quick tests: `python tests/make_piper_model.py OUT.onnx [normal|uniform|none]`.

It takes Piper's inputs (phoneme ids, their lengths, the three scales) and says each phoneme id as
32 ms of a tone whose pitch follows the id, with noise of `noise_scale` drawn the way `noise` says:
RandomNormalLike as Piper's VITS draws it, RandomUniformLike (noise the seeded rewrite does not
handle), or none.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SAMPLE_RATE = 16_000
SAMPLES_PER_ID = 512
_DRAW = {"normal": "RandomNormalLike", "uniform": "RandomUniformLike"}


def write(out: Path, noise: str = "normal") -> Path:
    """Write the model to `out` (ending in .onnx), its config beside it, and return `out`."""
    ramp = (np.arange(SAMPLES_PER_ID, dtype=np.float32) * 2e-3).reshape(1, 1, -1)
    nodes = [
        helper.make_node("Cast", ["input"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids", "last_axis"], ["column"]),
        helper.make_node("Mul", ["column", "ramp"], ["phase"]),  # [1, ids, samples]
        helper.make_node("Sin", ["phase"], ["tone"]),
        helper.make_node("Mul", ["tone", "quiet"], ["voice"]),
    ]
    if noise in _DRAW:
        nodes += [
            helper.make_node(_DRAW[noise], ["phase"], ["drawn"], dtype=TensorProto.FLOAT),
            helper.make_node("Gather", ["scales", "zero"], ["noise_scale"], axis=0),
            helper.make_node("Mul", ["drawn", "noise_scale"], ["scaled"]),
            helper.make_node("Mul", ["scaled", "quiet"], ["hiss"]),
            helper.make_node("Add", ["voice", "hiss"], ["sum"]),
        ]
    nodes.append(helper.make_node("Reshape", ["sum" if noise in _DRAW else "voice", "flat"], ["output"]))
    weights = {
        "last_axis": np.array([2], np.int64),
        "ramp": ramp,
        "quiet": np.array(0.1, np.float32),
        "flat": np.array([1, 1, -1], np.int64),
    } | ({"zero": np.array(0, np.int64)} if noise in _DRAW else {})
    graph = helper.make_graph(
        nodes,
        "tiny_piper",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8), str(out))
    config = {
        "audio": {"sample_rate": SAMPLE_RATE},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_id_map": _phoneme_ids(),
        "num_symbols": 256,
        "num_speakers": 1,
    }
    Path(f"{out}.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return out


def _phoneme_ids() -> dict[str, list[int]]:
    """Piper's own id map, so every phoneme espeak-ng gives has an id."""
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    return {phoneme: list(ids) for phoneme, ids in DEFAULT_PHONEME_ID_MAP.items()}


if __name__ == "__main__":
    print(write(Path(sys.argv[1]), *(sys.argv[2:3] or ["normal"])))
