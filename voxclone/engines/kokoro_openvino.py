"""Kokoro's generator on OpenVINO in bf16: the split, rewritten graph (kokoro_graph), built once per machine.

On a CPU with bf16 instructions this runs Kokoro about twice as fast as onnxruntime's int8 path
(bench/rtf.py). Without them OpenVINO would compute in float32 and gain nothing, so `auto` keeps
onnxruntime there.

Only the generator (`after`, about 80 % of a call) runs on OpenVINO. The part before the sine source
(text encoder, prosody predictor, decoder) stays the shipped int8 graph on onnxruntime: OpenVINO
re-prepares its kernels for every new input length, which text gives on nearly every call, and that
made the part twice as slow there (about 90 ms against 50 ms for a short first clause).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..onnx_sessions import onnx_session

# kokoro_graph (and onnx, ~0.2 s to import) is imported only where a model is built or loaded, so
# constructing an engine, and every CLI command that does, stays quick.

# Bump whenever kokoro_graph's rewrites change, so a build made by older code is never reused.
BUILD_VERSION = 3
# Kokoro puts about 0.3 s of silence (the start token's frames) before speech, and the generator
# spends a sixth of a short clause's time on it. All but this many duration frames (25 ms each) of it
# are cut before the generator, which changes only the generator's per-utterance normalisation
# statistics: speaker similarity 0.98 to the uncut output, the same Whisper WER, the same pitch.
LEAD_FRAMES_KEPT = 4
_PARTS = ("before", "source", "after")


def has_fast_bf16() -> bool:
    """Whether OpenVINO is installed and this CPU computes bf16 natively."""
    try:
        import openvino as ov
    except ImportError:
        return False
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def prepared_graph(int8_model: Path, digest: str, cache_dir: Path) -> Path:
    """The folder holding the three parts of this model, built on first use (a few seconds)."""
    out = cache_dir / f"kokoro-{digest[:16]}-v{BUILD_VERSION}"
    if out.is_dir():
        return out
    import onnx

    from .kokoro_graph import dequantize, polynomial_snake, split_at_sine_source

    split = split_at_sine_source(onnx.load(str(int8_model)))
    dequantize(split.after)
    polynomial_snake(split.after)
    tmp = cache_dir / f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.mkdir(parents=True)
    for part in _PARTS:
        onnx.save(getattr(split, part), str(tmp / f"{part}.onnx"))
    try:
        tmp.rename(out)  # atomic: the folder appears complete or not at all
    except OSError:  # another process finished the same build first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    for old in range(1, BUILD_VERSION):  # builds by older code are never read again: free their space
        shutil.rmtree(cache_dir / f"kokoro-{digest[:16]}-v{old}", ignore_errors=True)
    return out


class OpenVinoKokoro:
    """One Kokoro call: before (onnxruntime, int8) -> sine source (onnxruntime, float32) -> after (OpenVINO, bf16)."""

    def __init__(self, graph_dir: Path, threads: int) -> None:
        import openvino as ov

        from .kokoro_graph import DURATIONS_TENSOR

        core = ov.Core()
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or (os.cpu_count() or 1),
            # OpenVINO caches compiled kernels per input shape, and text gives a new shape almost every
            # call: with the default cache RSS grew about 17 MB per new length. Off, it stays flat.
            "CPU_RUNTIME_CACHE_CAPACITY": 0,
        }
        # Not spinning: OpenVINO starts on the same cores the moment this part returns (-6 % per call).
        self.before_path = graph_dir / "before.onnx"
        self._before = onnx_session(self.before_path, threads, spin=False)
        self._after = core.compile_model(graph_dir / "after.onnx", "CPU", config)
        self._source = onnx_session(graph_dir / "source.onnx", 1)
        # The source part's one input is the f0 curve, its one output the excitation `after` takes.
        self._f0 = self._source.get_inputs()[0].name
        self._excitation = self._source.get_outputs()[0].name
        self._durations = DURATIONS_TENSOR
        self._handoff = [o.name for o in self._before.get_outputs()]
        self._after_inputs = [i.get_any_name() for i in self._after.inputs]
        self._local = threading.local()  # an infer request serves one call at a time: one per thread

    def _request(self) -> Any:  # an ov.InferRequest; openvino is imported lazily, so it is not named here
        if not hasattr(self._local, "request"):
            self._local.request = self._after.create_infer_request()
        return self._local.request

    def with_before(
        self, before: ort.InferenceSession
    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The same call with another session of before.onnx (a deep-cloned voice's, kokoro_adapted)."""
        return lambda tokens, style, speed: self(tokens, style, speed, before)

    def __call__(
        self, tokens: np.ndarray, style: np.ndarray, speed: np.ndarray, before: ort.InferenceSession | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Audio, and the frames (25 ms each) the model gave each input token, as heard in that audio."""
        handoff = (before or self._before).run(self._handoff, {"tokens": tokens, "style": style, "speed": speed})
        tensors = dict(zip(self._handoff, handoff, strict=True))
        tensors[self._excitation] = self._source.run(None, {self._f0: tensors[self._f0]})[0]
        durations = np.array(tensors[self._durations], np.int64).ravel()
        durations[0] -= self._skip_leading_silence(tensors) // 2
        after = self._request()
        after.infer({name: tensors[name] for name in self._after_inputs})
        return after.get_output_tensor(0).data.ravel().copy(), durations

    def _skip_leading_silence(self, tensors: dict[str, np.ndarray]) -> int:
        """Drop the start token's frames, but LEAD_FRAMES_KEPT, from every time-varying generator input;
        returns how many f0 frames (two per duration frame) were dropped."""
        durations = tensors[self._durations].ravel()
        f0_frames = tensors[self._f0].shape[-1]
        if 2 * int(durations.sum()) != f0_frames:  # not the frame layout this relies on: cut nothing
            return 0
        cut = 2 * (int(durations[0]) - LEAD_FRAMES_KEPT)  # in f0 frames
        if cut <= 0:
            return 0
        for name in self._after_inputs:
            x = tensors[name]
            axis = 1 if name == self._excitation else x.ndim - 1  # (1, samples, 1) or (1, channels, time)
            if x.shape[axis] > 1 and x.shape[axis] % f0_frames == 0:  # style inputs are (1, channels, 1)
                per_frame = x.shape[axis] // f0_frames
                tensors[name] = np.delete(x, np.s_[: cut * per_frame], axis=axis)  # a new, contiguous array
        return cut
