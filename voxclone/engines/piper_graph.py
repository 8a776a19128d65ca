"""Piper's VITS graph with its noise drawn from a seed, so that the same request gives the same audio.

VITS draws Gaussian noise twice per call, with RandomNormalLike: the stochastic duration predictor's
[1, 2, T_text] and the prior's [1, 192, T_frames]. onnxruntime seeds that generator once per session,
so every call sounded a little different and no per-call seed can be passed in. `seed_noise` replaces
each RandomNormalLike(x) by a window of one fixed pool of standard normal numbers kept in the graph,
read from an offset the caller feeds:

    noise_k = Reshape(Gather(pool, (Range(0, Size(x)) + offsets[k]) mod POOL_SIZE), Shape(x))

A seed picks the offsets: the same seed gives the same audio, another seed another noise window. Any
rank and length fits (a window running past the pool's end wraps to its start; the pool holds over a
minute of the prior's noise, longer than any piece), and a call costs one gather of its noise more.

A model this does not fit (noise of another kind, another dtype) is refused with GraphMismatch, and
the caller keeps its original graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

# onnx (~0.2 s to import) is imported where a graph is built, so constructing an engine stays quick.

# Bump whenever the rewrite changes, so a build made by older code is never reused.
BUILD_VERSION = 1
_PREFIX = "voxclone_noise_"  # every tensor the rewrite adds is named so, and the model must have none
OFFSETS_INPUT = _PREFIX + "offsets"  # int64 [K]: where each of the K noise tensors starts in the pool
POOL_SIZE = 1 << 20  # float32 normals (4 MB): 5,400 frames of the prior's 192 channels, 60 s at 22 kHz
_POOL_SEED = 20_240_601  # any fixed value: the pool is part of the build, the same on every machine
_POOL, _POOL_LENGTH, _ZERO, _ONE = (_PREFIX + name for name in ("pool", "pool_size", "zero", "one"))
_FLOAT = 1  # onnx.TensorProto.FLOAT
# ONNX's random operators. The rewrite replaces RandomNormalLike; a graph with any other keeps its own noise.
_RANDOM = {"RandomNormalLike", "RandomNormal", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


class GraphMismatch(ValueError):
    """The model's noise is not drawn the way `seed_noise` expects."""


def file_digest(path: Path) -> str:
    """SHA-256 of a model file: its builds are keyed by content, not by where the file lies."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def seeded_graph(model: Path, cache_dir: Path) -> Path:
    """The seeded rewrite of `model`, built into `cache_dir` on first use (a few seconds, once per machine);
    `model` itself where it draws no random numbers (it already speaks the same every time).

    Raises GraphMismatch when the model draws noise the rewrite cannot seed.
    """
    digest = file_digest(model)
    out = cache_dir / f"piper-{digest[:16]}-v{BUILD_VERSION}.onnx"
    if out.is_file():
        return out
    import onnx
    from google.protobuf.message import DecodeError

    from ..files import atomic_write

    try:
        rewritten = onnx.load(str(model))
    except DecodeError as e:  # onnxruntime, loading the original, says what is wrong with it
        raise GraphMismatch(f"not a readable ONNX model: {e}") from e
    if not seed_noise(rewritten):
        return model
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out, rewritten.SerializeToString())  # another process building the same gets the same bytes
    for old in range(1, BUILD_VERSION):  # builds by older code are never read again: free their space
        (cache_dir / f"piper-{digest[:16]}-v{old}.onnx").unlink(missing_ok=True)
    return out


def seed_noise(model: onnx.ModelProto) -> int:
    """Replace every RandomNormalLike by a window of the pool at a fed offset; returns how many (0: the
    model draws no random numbers and is left as it is)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    draws = [n for n in graph.node if n.op_type == "RandomNormalLike"]
    everywhere = [n.op_type for n in _all_nodes(graph) if n.op_type in _RANDOM]
    if not everywhere:
        return 0
    if set(everywhere) != {"RandomNormalLike"} or len(everywhere) != len(draws):
        kinds = ", ".join(sorted(set(everywhere)))
        raise GraphMismatch(f"it draws random numbers with {kinds}, not only with top-level RandomNormalLike")
    names = {name for n in graph.node for name in (*n.input, *n.output)} | {t.name for t in graph.initializer}
    if any(name.startswith(_PREFIX) for name in names | {i.name for i in graph.input}):
        raise GraphMismatch(f"its tensor names clash with the rewrite's ({_PREFIX}*)")
    for node in draws:
        drawn = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (drawn.get("dtype"), drawn.get("mean", 0.0), drawn.get("scale", 1.0)) != (_FLOAT, 0.0, 1.0):
            raise GraphMismatch(f"{node.name} draws {drawn}, not standard normal float32")

    pool = np.random.default_rng(_POOL_SEED).standard_normal(POOL_SIZE, dtype=np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(pool, _POOL),
            numpy_helper.from_array(np.array(POOL_SIZE, np.int64), _POOL_LENGTH),
            numpy_helper.from_array(np.array(1, np.int64), _ONE),
            numpy_helper.from_array(np.array(0, np.int64), _ZERO),
        ]
    )
    graph.input.append(helper.make_tensor_value_info(OFFSETS_INPUT, TensorProto.INT64, [len(draws)]))
    replacements = {id(node): _window(node, k) for k, node in enumerate(draws)}
    nodes = [n for node in graph.node for n in replacements.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(draws)


def _window(node: onnx.NodeProto, k: int) -> list[onnx.NodeProto]:
    """Nodes computing RandomNormalLike(x)'s output as the pool's window at offsets[k], shaped like x."""
    from onnx import helper, numpy_helper

    x, out, p = node.input[0], node.output[0], f"{_PREFIX}{k}_"
    return [
        helper.make_node("Constant", [], [p + "k"], value=numpy_helper.from_array(np.array(k, np.int64))),
        helper.make_node("Gather", [OFFSETS_INPUT, p + "k"], [p + "offset"], axis=0),
        helper.make_node("Size", [x], [p + "size"]),
        helper.make_node("Range", [_ZERO, p + "size", _ONE], [p + "steps"]),
        helper.make_node("Add", [p + "steps", p + "offset"], [p + "unwrapped"]),
        helper.make_node("Mod", [p + "unwrapped", _POOL_LENGTH], [p + "index"]),
        helper.make_node("Gather", [_POOL, p + "index"], [p + "flat"], axis=0),
        helper.make_node("Shape", [x], [p + "shape"]),
        helper.make_node("Reshape", [p + "flat", p + "shape"], [out], name=node.name),
    ]


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node, including those of subgraphs (If/Loop bodies), where noise could hide too."""
    from onnx import AttributeProto

    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                yield from _all_nodes(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    yield from _all_nodes(sub)
