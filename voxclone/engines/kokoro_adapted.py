"""Speaking deep-cloned Kokoro voices at stock speed: the shipped graph with the voice's own weights in place.

A deep voice (made by voxclone.engines.kokoro_deep) is a style table plus new values for some float
initializers of the shipped graph: the decoder's AdaIN `fc` biases. onnxruntime replaces initializers
of a session by name (`SessionOptions.add_initializer`), so each deep voice gets its own session of
the unchanged int8 file: nothing is re-quantised, and a call costs what a stock voice's costs.

On onnxruntime the session is the whole graph. On OpenVINO it is the part before the sine source
(onnxruntime, int8): every AdaIN `fc` of the generator is computed there too, from the style, and
handed to the generator as its scale and shift inputs, so the generator (OpenVINO) is shared by all
voices unchanged.

Sessions are built on a voice's first use (about 0.5 s) and cached, a few at a time.

A deep voice on disk is one .npz, read with numpy alone (serving never needs torch):
- `style`: the (510, 256) style table, the instant clone's with the fitted timbre half;
- `init/<name>`: float values of the shipped graph's initializers of that name (the decoder's AdaIN
  `fc` biases as fitted), which the engine puts in place of the graph's own;
- `meta`: JSON: format version and the fit's figures.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..errors import BadInput
from ..onnx_sessions import onnx_session

# (tokens, style row, speed) -> (audio, frames per token when the graph gives them)
Runner = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]
CACHED_VOICES = 4  # each session holds its own copy of the graph: about 90 MB whole, 25 MB before the source
FORMAT = 1
_INIT = "init/"


@dataclass
class DeepVoice:
    style: np.ndarray  # (510, 256) float32
    initializers: dict[str, np.ndarray]  # graph initializer name -> float32 value
    meta: dict[str, Any] = field(default_factory=dict)


def save(path: Path, voice: DeepVoice) -> None:
    """Write a deep voice atomically: the file appears complete under its name or not at all."""
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {f"{_INIT}{k}": np.asarray(v, np.float32) for k, v in voice.initializers.items()}
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


class AdaptedSessions:
    """Cached onnxruntime sessions of one graph file, one per deep voice."""

    def __init__(self, graph: Path | bytes, threads: int, *, spin: bool = True, size: int = CACHED_VOICES) -> None:
        self._graph = graph
        self._threads = threads
        self._spin = spin
        self._size = size
        self._names: set[str] | None = None
        self._items: OrderedDict[tuple[str, int], tuple[ort.InferenceSession, dict[str, ort.OrtValue]]] = OrderedDict()
        self._lock = threading.Lock()

    def _float_initializers(self) -> set[str]:
        if self._names is None:
            import onnx  # only when the first deep voice speaks

            graph = self._graph
            model = (
                onnx.load_from_string(graph)
                if isinstance(graph, bytes)
                else onnx.load(str(graph), load_external_data=False)
            )
            self._names = {w.name for w in model.graph.initializer if w.data_type == onnx.TensorProto.FLOAT}
        return self._names

    def session(self, path: Path, voice: DeepVoice | None = None) -> ort.InferenceSession:
        """The session for the deep voice stored at `path` (rebuilt if the file changed)."""
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        voice = voice or load(path)
        known = self._float_initializers()
        # Only what this graph holds: the part before the sine source lacks nothing the fit changes,
        # but a name this graph lacks must fail loudly rather than be silently ignored.
        unknown = sorted(set(voice.initializers) - known)
        if unknown:
            raise BadInput(f"{path.name}: the model has no float weights named {unknown[:3]}")
        values = {
            k: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v, np.float32))
            for k, v in voice.initializers.items()
        }
        session = onnx_session(self._graph, self._threads, spin=self._spin, initializers=values)
        with self._lock:
            self._items[key] = (session, values)  # the values must live as long as the session
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return session


def runner(sessions: AdaptedSessions, path: Path, stock: Runner) -> Runner:
    """A Kokoro call, (tokens, style row, speed) -> audio, speaking with the deep voice at `path`.

    `stock` is the engine's own runner: on OpenVINO it is called with the voice's session of the part
    before the sine source; on onnxruntime the voice's session is the whole call.
    """
    session = sessions.session(path)
    before = getattr(stock, "with_before", None)
    if before is not None:
        adapted: Runner = before(session)
        return adapted

    def run(tokens: np.ndarray, style: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = session.run(None, {"tokens": tokens, "style": style, "speed": speed})
        return outputs[0], (np.asarray(outputs[1]).ravel() if len(outputs) > 1 else None)

    return run
