"""A spec and its weights as an ONNX model, built node by node with ``onnx.helper``.

The interface stays channels-last, like the engine and the data::

    input  "input"          float32 (batch, *spec.input_shape)   channels-last, batch symbolic
    output "logits"         float32 (batch, *output_shape)       the spec's last layer
    output "probabilities"  float32 (batch, *output_shape)       Softmax over the last axis (optional)

Inside, tensors with spatial axes move to channels-first (ONNX's layout) where an op needs it
and back where the engine's order matters; each move is one Transpose, made once per tensor::

    dense          MatMul [+ Add bias] [+ Relu]             (MatMul, not Gemm: the int8 tools quantise it)
    conv1d/conv2d  Conv [+ Relu], channels-first            TF padding as explicit pads
    maxpool1d/2d   MaxPool, channels-first                  TF padding as explicit pads
    globalavgpool  GlobalAveragePool + Flatten, channels-first
    flatten        Flatten, channels-last                   the engine's C order of (N, ..., C)
    concat         Concat on the channels axis of whichever layout its first input has
    groupnorm      Reshape (N, G, -1) + InstanceNormalization + Reshape, then Mul/Add per channel
                   [+ Relu], channels-first (ONNX's GroupNormalization changed meaning in opset 21)
    relu           Relu;  dropout: nothing (the identity at inference)

Initializers carry the engine's parameter names (``conv1/kernel``); conv kernels are stored in
ONNX's (O, C, *K) order, dense kernels as the engine's (in, out).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fedge import __version__
from fedge.shared.nn import F, Layer, Model, check_weights

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis, as the engine computes it
BATCH = "batch"
OUTPUTS = ("logits", "probabilities")
LAYOUTS = {1: "NC", 2: "NWC", 3: "NHWC"}  # sample rank -> layout, the registry manifest's words


@dataclass(frozen=True)
class Tensor:
    """A value in the graph: its name, its shape channels-last without the batch, its layout."""

    name: str
    shape: tuple[int, ...]
    channels_first: bool = False

    @property
    def spatial(self) -> bool:
        return len(self.shape) >= 2


class Graph:
    """Collects nodes and initializers; knows the weights by parameter name."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._moved: dict[tuple[str, bool], Tensor] = {}

    def node(self, op: str, inputs: Sequence[str], output: str, **attributes: Any) -> str:
        """One node named after its output; a layer called like a graph output gets a suffix."""
        return self.output(op, inputs, f"{output}/value" if output in OUTPUTS else output, **attributes)

    def output(self, op: str, inputs: Sequence[str], name: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attributes))
        return name

    def initializer(self, name: str, array: np.ndarray | list[int], dtype: type = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def layout(self, x: Tensor, channels_first: bool) -> Tensor:
        """``x`` in the wanted layout: itself, or one Transpose of it (made once)."""
        if not x.spatial or x.channels_first == channels_first:
            return x
        if (x.name, channels_first) not in self._moved:
            name = f"{x.name}/{'channels_first' if channels_first else 'channels_last'}"
            self.node("Transpose", [x.name], name, perm=_perm(len(x.shape) + 1, channels_first))
            self._moved[(x.name, channels_first)] = Tensor(name, x.shape, channels_first)
        return self._moved[(x.name, channels_first)]


def export(
    spec: dict[str, Any],
    weights: Sequence[np.ndarray],
    *,
    probabilities: bool = True,
    opset: int = DEFAULT_OPSET,
) -> onnx.ModelProto:
    """The ONNX model computing what ``Model(spec)`` with ``weights`` computes at inference."""
    latest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(f"expected an opset from {MIN_OPSET} to {latest}, got {opset}")
    model = Model(spec)  # validates the spec, with the engine's own messages
    check_weights(weights, [p.shape for p in model.parameters()], model.name)
    graph = Graph(dict(zip(model.parameter_names, weights, strict=True)))

    values = {"input": Tensor("input", model.input_shape)}
    for layer, sources in zip(model.layers, model.inputs, strict=True):
        values[layer.name] = LAYERS[layer.kind](graph, layer, [values[s] for s in sources])
    outputs = [_logits(graph, values[model.layers[-1].name])]
    if probabilities:
        outputs.append(graph.output("Softmax", ["logits"], "probabilities", axis=-1))
    result = _package(model, graph, outputs, opset)
    layout = LAYOUTS.get(len(model.input_shape), "channels-last")
    props = {"fedge.spec": json.dumps(spec, sort_keys=True), "fedge.input_layout": layout, "fedge.quantization": "fp32"}
    helper.set_model_props(result, props)
    onnx.checker.check_model(result, full_check=True)
    return result


def _package(model: Model, graph: Graph, outputs: list[str], opset: int) -> onnx.ModelProto:
    def declare(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *shape])

    onnx_graph = helper.make_graph(
        graph.nodes,
        model.name,
        [declare("input", model.input_shape)],
        [declare(name, model.output_shape) for name in outputs],
        graph.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(
        onnx_graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),  # the oldest runtimes that know the opset load it
        producer_name="fedge",
        producer_version=__version__,
        doc_string=_describe(model, outputs),
    )


def _describe(model: Model, outputs: list[str]) -> str:
    shape = ", ".join(map(str, model.input_shape))
    return (
        f"fedge model {model.name!r}: input 'input' float32 (batch, {shape}), channels-last; "
        f"outputs {', '.join(repr(o) for o in outputs)}. Exported by fedge {__version__}."
    )


def _logits(graph: Graph, last: Tensor) -> str:
    """The last layer's value as the output "logits", channels-last."""
    if last.channels_first:
        return graph.output("Transpose", [last.name], "logits", perm=_perm(len(last.shape) + 1, False))
    final = graph.nodes[-1] if graph.nodes else None
    if final is not None and final.output[0] == last.name:  # nothing reads it yet: let it write the output
        final.output[0] = final.name = "logits"
        return "logits"
    return graph.output("Identity", [last.name], "logits")


# -- one function per layer kind: (graph, layer, input tensors) -> output tensor --------------
def _activate(graph: Graph, layer: Layer, y: Tensor) -> Tensor:
    if layer.config.get("activation", "linear") != "relu":
        return y
    return Tensor(graph.node("Relu", [y.name], layer.name), y.shape, y.channels_first)


def _pre_activation(layer: Layer, op: str) -> str:
    return f"{layer.name}/{op}" if layer.config.get("activation", "linear") == "relu" else layer.name


def _dense(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    (x,) = inputs
    kernel = graph.initializer(f"{layer.name}/kernel", graph.weights[f"{layer.name}/kernel"])
    units = int(layer.config["units"])
    if not layer.config["use_bias"]:
        y = graph.node("MatMul", [x.name, kernel], _pre_activation(layer, "matmul"))
    else:
        bias = graph.initializer(f"{layer.name}/bias", graph.weights[f"{layer.name}/bias"])
        product = graph.node("MatMul", [x.name, kernel], f"{layer.name}/matmul")
        y = graph.node("Add", [product, bias], _pre_activation(layer, "add"))
    return _activate(graph, layer, Tensor(y, (units,)))


def _conv(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    x = graph.layout(inputs[0], channels_first=True)
    kernel = graph.weights[f"{layer.name}/kernel"]  # (*K, C, O)
    nd = kernel.ndim - 2
    names = [x.name, graph.initializer(f"{layer.name}/kernel", kernel.transpose(nd + 1, nd, *range(nd)))]
    if layer.config["use_bias"]:
        names.append(graph.initializer(f"{layer.name}/bias", graph.weights[f"{layer.name}/bias"]))
    pads, out = _windows(x.shape, kernel.shape[:nd], _ints(layer.config["strides"], nd), layer.config["padding"])
    strides = _ints(layer.config["strides"], nd)
    attributes = {"kernel_shape": list(kernel.shape[:nd]), "strides": list(strides), "pads": pads}
    y = graph.node("Conv", names, _pre_activation(layer, "conv"), **attributes)
    return _activate(graph, layer, Tensor(y, (*out, kernel.shape[-1]), channels_first=True))


def _max_pool(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    x = graph.layout(inputs[0], channels_first=True)
    nd = len(x.shape) - 1
    pool = _ints(layer.config["pool_size"], nd)
    strides = _ints(layer.config["strides"] or pool, nd)
    pads, out = _windows(x.shape, pool, strides, layer.config["padding"])
    y = graph.node("MaxPool", [x.name], layer.name, kernel_shape=list(pool), strides=list(strides), pads=pads)
    return Tensor(y, (*out, x.shape[-1]), channels_first=True)


def _global_avg_pool(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    x = graph.layout(inputs[0], channels_first=True)
    pooled = graph.node("GlobalAveragePool", [x.name], f"{layer.name}/pool")
    return Tensor(graph.node("Flatten", [pooled], layer.name, axis=1), (x.shape[-1],))


def _flatten(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    x = graph.layout(inputs[0], channels_first=False)  # the engine flattens channels-last
    return Tensor(graph.node("Flatten", [x.name], layer.name, axis=1), (int(np.prod(x.shape)),))


def _concat(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    first = inputs[0].channels_first
    xs = [graph.layout(x, first) for x in inputs]
    shape = (*xs[0].shape[:-1], sum(x.shape[-1] for x in xs))
    y = graph.node("Concat", [x.name for x in xs], layer.name, axis=1 if first else -1)
    return Tensor(y, shape, first)


def _group_norm(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    x = graph.layout(inputs[0], channels_first=True)
    groups, channels, name = int(layer.config["groups"]), x.shape[-1], layer.name
    per_channel = (channels,) + (1,) * (len(x.shape) - 1)  # broadcasts over (N, C, *S)
    by_group = graph.initializer(f"{name}/groups", [0, groups, -1], np.int64)
    grouped = graph.node("Reshape", [x.name, by_group], f"{name}/grouped")
    ones, zeros = np.ones(groups, np.float32), np.zeros(groups, np.float32)
    unit = [graph.initializer(f"{name}/unit_scale", ones), graph.initializer(f"{name}/unit_offset", zeros)]
    normal = graph.node(
        "InstanceNormalization", [grouped, *unit], f"{name}/normalised", epsilon=float(layer.config["epsilon"])
    )
    back = [0, channels, *x.shape[:-1]]
    y = graph.node("Reshape", [normal, graph.initializer(f"{name}/channels", back, np.int64)], f"{name}/ungrouped")
    gamma = graph.initializer(f"{name}/gamma", graph.weights[f"{name}/gamma"].reshape(per_channel))
    beta = graph.initializer(f"{name}/beta", graph.weights[f"{name}/beta"].reshape(per_channel))
    y = graph.node("Add", [graph.node("Mul", [y, gamma], f"{name}/scaled"), beta], _pre_activation(layer, "add"))
    return _activate(graph, layer, Tensor(y, x.shape, channels_first=True))


def _relu(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    (x,) = inputs
    return Tensor(graph.node("Relu", [x.name], layer.name), x.shape, x.channels_first)


def _dropout(graph: Graph, layer: Layer, inputs: list[Tensor]) -> Tensor:
    return inputs[0]


LAYERS: dict[str, Callable[[Graph, Layer, list[Tensor]], Tensor]] = {
    "dense": _dense,
    "conv1d": _conv,
    "conv2d": _conv,
    "maxpool1d": _max_pool,
    "maxpool2d": _max_pool,
    "globalavgpool": _global_avg_pool,
    "flatten": _flatten,
    "concat": _concat,
    "groupnorm": _group_norm,
    "relu": _relu,
    "dropout": _dropout,
}


def _perm(rank: int, channels_first: bool) -> list[int]:
    return [0, rank - 1, *range(1, rank - 1)] if channels_first else [0, *range(2, rank), 1]


def _ints(value: int | Sequence[int], nd: int) -> tuple[int, ...]:
    return (int(value),) * nd if isinstance(value, int) else tuple(int(v) for v in value)


def _windows(
    shape: tuple[int, ...], kernel: Sequence[int], strides: Sequence[int], padding: str
) -> tuple[list[int], tuple[int, ...]]:
    """ONNX pads (all begins, then all ends) and the output size, from the engine's TF padding rule."""
    plan = [F.pad_amounts(s, k, st, padding) for s, k, st in zip(shape[:-1], kernel, strides, strict=True)]
    return [b for b, _, _ in plan] + [a for _, a, _ in plan], tuple(o for _, _, o in plan)
