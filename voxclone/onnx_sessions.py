"""onnxruntime sessions as voxclone runs them: CPU, bounded threads, memory flat over thousands of calls."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort


def onnx_session(
    path: Path | str | bytes, threads: int, *, spin: bool = True, initializers: dict[str, ort.OrtValue] | None = None
) -> ort.InferenceSession:
    """An onnxruntime CPU session with all graph optimisations and a bounded thread count.

    `spin=False` where another runtime computes right after this session on the same cores: the idle
    threads would otherwise busy-wait through the other's work. `initializers` replace the graph's
    float weights of those names (a deep-cloned voice's own); the caller keeps them alive as long as
    the session.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns are planned and cached per distinct input shape, each served as one large block
    # from the arena, and text gives a new shape almost every request. Measured over 2,000 requests:
    # RSS crept up 12 % with them, 5 % without, at no measurable speed cost (bench/memory.py,
    # bench/rtf.py). The CPU arena stays on: without it RSS nearly doubled (glibc heaps fragment).
    options.enable_mem_pattern = False
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name, value in (initializers or {}).items():
        options.add_initializer(name, value)
    model = path if isinstance(path, bytes) else str(path)  # a file, or a serialised model
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
