"""A deep-cloned voice on disk: one .npz, read with numpy alone (serving never needs torch).

- `style`: the (510, 256) style table, the instant clone's with the fitted timbre half;
- `init/<name>`: float values of the shipped graph's initializers of that name (the decoder's AdaIN
  `fc` biases as fitted), which the engine puts in place of the graph's own;
- `meta`: JSON: format version, the sha256 of the model the fit was made on, and the fit's figures.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput

FORMAT = 1
_INIT = "init/"


@dataclass
class DeepVoice:
    style: np.ndarray  # (510, 256) float32
    initializers: dict[str, np.ndarray]  # graph initializer name -> float32 value
    meta: dict = field(default_factory=dict)


def save(path: Path, voice: DeepVoice) -> None:
    """Write atomically: the file appears complete under its name or not at all."""
    buffer = io.BytesIO()
    arrays = {f"{_INIT}{k}": np.asarray(v, np.float32) for k, v in voice.initializers.items()}
    meta = json.dumps({"format": FORMAT, **voice.meta})
    np.savez(buffer, style=np.asarray(voice.style, np.float32), meta=np.array(meta), **arrays)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> DeepVoice:
    """Read a deep voice; BadInput if the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            style = np.asarray(z["style"], np.float32)
            inits = {k.removeprefix(_INIT): np.asarray(z[k], np.float32) for k in z.files if k.startswith(_INIT)}
    except (OSError, KeyError, ValueError) as e:
        raise BadInput(f"{path.name} is not a readable deep voice: {e}") from e
    if meta.get("format") != FORMAT or style.shape != (510, 256) or not np.isfinite(style).all():
        raise BadInput(f"{path.name}: not a deep voice of format {FORMAT} with a 510x256 style table")
    if not all(np.isfinite(v).all() for v in inits.values()):
        raise BadInput(f"{path.name}: its weights are not all finite")
    return DeepVoice(style, inits, meta)
