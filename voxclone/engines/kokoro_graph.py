"""Rewrites of Kokoro's int8 ONNX graph that let OpenVINO run its generator fast without hurting the voice.

Three steps, each checked against the graph's exact shape so an unexpected model fails loudly instead
of being silently mis-rewritten:

1. `split_at_sine_source`: in bf16 the sine source's phase (a cumulative sum reaching thousands of
   radians) loses everything below a whole radian and the voice turns half-whispered. The graph is cut
   into the part before the source, the source itself (run in float32), and the part after it (the
   generator, which OpenVINO runs).
2. `dequantize`, on the generator: the shipped graph is onnxruntime dynamic quantisation
   (DynamicQuantizeLinear -> ConvInteger/MatMulInteger -> int32 bias -> Cast -> Mul by the scales).
   Each chain becomes one float Conv/MatMul with weight (q - zero point) * scale, which OpenVINO's bf16
   kernels run far faster than its integer path.
3. `polynomial_snake`, on the generator: its 48 Snake activations compute sin(z)^2. OpenVINO has no
   compiled Sin kernel (a reference loop took about a quarter of the time), so sin^2 is evaluated as a
   polynomial after reducing z modulo pi (max error 4.5e-6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, utils

# sin(r)^2 = u * P(u), u = r^2, r in [-pi/2, pi/2]; P fitted by least squares, highest power first.
_SIN2_COEFFS = (1.1812561e-04, -3.1292627e-03, 4.4407691e-02, -3.3332296e-01, 9.9999954e-01)
# The frame-rate f0 curve enters the sine source here; the source's excitation leaves it there.
F0_TENSOR = "/decoder/decoder/Unsqueeze_output_0"
SOURCE_TENSOR = "/decoder/decoder/generator/m_source/l_tanh/Tanh_output_0"
# Frames per input token (rounded, at least 1; two f0 frames each), which `before` also hands out.
DURATIONS_TENSOR = "/encoder/Clip_output_0"


class GraphMismatch(ValueError):
    """The model is not shaped the way these rewrites expect."""


def with_durations_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped graph answering the frames it gives each token too (its second output), for word timings."""
    if not any(DURATIONS_TENSOR in node.output for node in model.graph.node):
        raise GraphMismatch(f"{DURATIONS_TENSOR} is not in the graph")
    model.graph.output.append(helper.make_tensor_value_info(DURATIONS_TENSOR, onnx.TensorProto.FLOAT, None))
    return model


@dataclass
class _Index:
    """Who produces and who consumes each tensor, and the constant weights by name."""

    producer: dict[str, onnx.NodeProto]
    consumers: dict[str, list[onnx.NodeProto]]
    weights: dict[str, onnx.TensorProto]

    @classmethod
    def of(cls, graph: onnx.GraphProto) -> _Index:
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        producer = {out: node for node in graph.node for out in node.output}
        return cls(producer, consumers, {w.name: w for w in graph.initializer})

    def array(self, name: str) -> np.ndarray:
        """A constant: a weight, or the output of a Constant node."""
        if name in self.weights:
            return numpy_helper.to_array(self.weights[name])
        node = self.producer.get(name)
        if node is None or node.op_type != "Constant":
            raise GraphMismatch(f"{name} is not a constant")
        return numpy_helper.to_array(next(a.t for a in node.attribute if a.name == "value"))

    def sole_consumer(self, tensor: str, op: str) -> onnx.NodeProto:
        found = self.consumers.get(tensor, [])
        if len(found) != 1 or found[0].op_type != op:
            raise GraphMismatch(f"{tensor} should feed one {op}, feeds {[n.op_type for n in found]}")
        return found[0]


def _float_bias(index: _Index, add: onnx.NodeProto, int_output: str) -> np.ndarray:
    """The float bias behind an integer bias Add: Reshape <- Cast <- Floor <- Div(bias, scale)."""
    node = index.producer[next(i for i in add.input if i != int_output)]
    while node.op_type in ("Reshape", "Cast", "Floor"):
        node = index.producer[node.input[0]]
    if node.op_type != "Div":
        raise GraphMismatch(f"integer bias of {add.name} does not come from a Div")
    return index.array(node.input[0])


def _weight_scale(index: _Index, mul: onnx.NodeProto, cast_output: str, x_scale: str) -> np.ndarray:
    """The weight's scale, the constant factor of Mul(x_scale, w_scale) that rescales the int32 result."""
    scales = index.producer[next(i for i in mul.input if i != cast_output)]
    if scales.op_type != "Mul" or x_scale not in scales.input:
        raise GraphMismatch(f"{mul.name} is not rescaled by x_scale * w_scale")
    return index.array(next(i for i in scales.input if i != x_scale))


def _float_weight(index: _Index, node: onnx.NodeProto, w_scale: np.ndarray) -> np.ndarray:
    q = index.array(node.input[1]).astype(np.float32)
    zero = index.array(node.input[3]).astype(np.float32) if len(node.input) > 3 and node.input[3] else np.float32(0)
    scale = w_scale.astype(np.float32)
    if node.op_type == "ConvInteger" and scale.size > 1:  # per output channel: broadcast over the kernel
        scale = scale.reshape(-1, *([1] * (q.ndim - 1)))
        zero = np.reshape(zero, scale.shape) if np.size(zero) > 1 else zero
    return (q - zero) * scale


@dataclass
class _Chain:
    """One dynamically quantised Conv/MatMul: its nodes, and its weight and bias in float."""

    node: onnx.NodeProto  # the ConvInteger/MatMulInteger
    quantize: onnx.NodeProto  # the DynamicQuantizeLinear of its input
    nodes: list[onnx.NodeProto]  # the integer op, its integer bias Add (if any) and the Cast
    mul: onnx.NodeProto  # the Mul rescaling the result: the chain's last node
    weight: np.ndarray  # float32; MatMul: [in, out], Conv: [out, in, kernel]
    bias: np.ndarray | None


def _chains(index: _Index, graph: onnx.GraphProto) -> list[_Chain]:
    chains = []
    for node in graph.node:
        if node.op_type not in ("ConvInteger", "MatMulInteger"):
            continue
        quantize = index.producer.get(node.input[0])
        if quantize is None or quantize.op_type != "DynamicQuantizeLinear":
            raise GraphMismatch(f"{node.name}: input is not dynamically quantised")
        nodes, last, bias = [node], node, None
        after = index.consumers.get(node.output[0], [])
        if len(after) == 1 and after[0].op_type == "Add":
            bias = _float_bias(index, after[0], node.output[0])
            nodes.append(after[0])
            last = after[0]
        cast = index.sole_consumer(last.output[0], "Cast")
        mul = index.sole_consumer(cast.output[0], "Mul")
        weight = _float_weight(index, node, _weight_scale(index, mul, cast.output[0], quantize.output[1]))
        chains.append(_Chain(node, quantize, [*nodes, cast], mul, weight.astype(np.float32), bias))
    return chains


def integer_weights(model: onnx.ModelProto) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Node name -> float (weight, bias) of every dynamically quantised Conv/MatMul (MatMul weights are [in, out])."""
    graph = model.graph
    return {c.node.name: (c.weight, c.bias) for c in _chains(_Index.of(graph), graph)}


def dequantize(model: onnx.ModelProto) -> int:
    """Replace every dynamically quantised Conv/MatMul by its float equivalent; returns how many."""
    graph = model.graph
    # The index holds every node's wrapper object alive, so the ids compared below stay those nodes'.
    index = _Index.of(graph)
    replaced: dict[int, onnx.NodeProto] = {}  # id of the chain's last node -> the float node
    dropped: set[int] = set()
    for chain in _chains(index, graph):
        node = chain.node
        unique = chain.mul.output[0]  # node names may be empty or repeated; tensor names are unique
        inputs = [chain.quantize.input[0], f"{unique}_wf"]
        graph.initializer.append(numpy_helper.from_array(chain.weight, inputs[1]))
        if chain.bias is not None:
            if node.op_type != "ConvInteger":
                raise GraphMismatch(f"{node.name}: a bias on MatMulInteger is not expected")
            inputs.append(f"{unique}_bf")
            graph.initializer.append(numpy_helper.from_array(chain.bias.astype(np.float32), inputs[2]))
        float_node = helper.make_node(node.op_type.removesuffix("Integer"), inputs, [unique], name=f"{unique}_f")
        float_node.attribute.extend(node.attribute)
        replaced[id(chain.mul)] = float_node
        dropped.update(id(n) for n in chain.nodes)
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    _prune(graph)
    return len(replaced)


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes and weights nothing reaches the outputs through (the orphaned quantisers and scales)."""
    live = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in live for o in node.output):
            kept.append(node)
            live.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = [w for w in graph.initializer if w.name in live]
    del graph.initializer[:]
    graph.initializer.extend(used)


def polynomial_snake(model: onnx.ModelProto) -> int:
    """Rewrite Pow(Sin(z), 2) as a polynomial in (z mod pi)^2; returns how many were rewritten."""
    graph = model.graph
    index = _Index.of(graph)
    constants = {"snake_inv_pi": 1 / np.pi, "snake_pi": np.pi} | {f"snake_c{i}": c for i, c in enumerate(_SIN2_COEFFS)}
    rewrites: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    for node in graph.node:
        after = index.consumers.get(node.output[0], []) if node.op_type == "Sin" else []
        if len(after) != 1 or after[0].op_type != "Pow" or index.array(after[0].input[1]).item() != 2:
            continue
        rewrites[id(node)] = _sin_squared(node.input[0], after[0].output[0], prefix=f"snake{len(rewrites)}_")
        dropped.add(id(after[0]))
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), k) for k, v in constants.items())
    nodes = [n for node in graph.node if id(node) not in dropped for n in rewrites.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(rewrites)


def _sin_squared(z: str, out: str, prefix: str) -> list[onnx.NodeProto]:
    p = prefix
    nodes = [
        helper.make_node("Mul", [z, "snake_inv_pi"], [p + "turns"]),
        helper.make_node("Round", [p + "turns"], [p + "whole"]),
        helper.make_node("Mul", [p + "whole", "snake_pi"], [p + "offset"]),
        helper.make_node("Sub", [z, p + "offset"], [p + "r"]),
        helper.make_node("Mul", [p + "r", p + "r"], [p + "u"]),
    ]
    acc = "snake_c0"
    for i in range(1, len(_SIN2_COEFFS)):  # Horner's rule
        nodes += [
            helper.make_node("Mul", [acc, p + "u"], [p + f"m{i}"]),
            helper.make_node("Add", [p + f"m{i}", f"snake_c{i}"], [p + f"h{i}"]),
        ]
        acc = p + f"h{i}"
    return [*nodes, helper.make_node("Mul", [acc, p + "u"], [out])]


@dataclass
class SplitModel:
    """Kokoro cut around its sine source: `before` -> `source` (float32) -> `after`."""

    before: onnx.ModelProto
    source: onnx.ModelProto
    after: onnx.ModelProto


def split_at_sine_source(model: onnx.ModelProto) -> SplitModel:
    """Cut the graph so that everything from the f0 curve to the source excitation is a model of its own."""
    graph = model.graph
    index = _Index.of(graph)
    if not {F0_TENSOR, SOURCE_TENSOR, DURATIONS_TENSOR} <= index.producer.keys():
        raise GraphMismatch("Kokoro's sine source or duration tensors are not in this graph")
    source = _ancestors(index, SOURCE_TENSOR, stop=F0_TENSOR)
    downstream = _descendants(index, source)
    before = [n for n in graph.node if id(n) not in downstream]
    after = [n for n in graph.node if id(n) in downstream and id(n) not in source]
    made_before, made_source = _outputs(before), {SOURCE_TENSOR}
    if _inputs(before) & (_outputs(after) | _outputs([n for n in graph.node if id(n) in source])):
        raise GraphMismatch("the part before the sine source depends on what follows it")
    graph_inputs = {i.name for i in graph.input}
    after_inputs = sorted(_inputs(after) & (made_before | made_source | graph_inputs))
    before_outputs = sorted((_inputs(after) | {F0_TENSOR, DURATIONS_TENSOR}) & made_before)
    extractor = utils.Extractor(model)
    return SplitModel(
        before=extractor.extract_model(sorted(graph_inputs), before_outputs),
        source=extractor.extract_model([F0_TENSOR], [SOURCE_TENSOR]),
        after=extractor.extract_model(after_inputs, [o.name for o in graph.output]),
    )


def _ancestors(index: _Index, tensor: str, stop: str) -> set[int]:
    found: set[int] = set()
    pending = [tensor]
    while pending:
        name = pending.pop()
        node = index.producer.get(name)
        if name == stop or node is None or id(node) in found:
            continue
        found.add(id(node))
        pending.extend(node.input)
    return found


def _descendants(index: _Index, roots: set[int]) -> set[int]:
    seen = set(roots)
    pending = [o for n in index.producer.values() if id(n) in roots for o in n.output]
    while pending:
        for node in index.consumers.get(pending.pop(), []):
            if id(node) not in seen:
                seen.add(id(node))
                pending.extend(node.output)
    return seen


def _outputs(nodes: list[onnx.NodeProto]) -> set[str]:
    return {o for n in nodes for o in n.output}


def _inputs(nodes: list[onnx.NodeProto]) -> set[str]:
    return {i for n in nodes for i in n.input if i}
