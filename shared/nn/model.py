"""A model is built from a JSON spec, the one description both trainers and ONNX export read.

A spec is ``{"name", "input_shape", "layers": [...]}``; each layer entry has a ``type``, an
optional ``name`` (default ``<type>_<index>``), its options, and optional ``inputs`` naming
earlier layers (default: the previous one; ``"input"`` is the model input), which lets
branches such as SqueezeNet's fire modules be written down. The last layer is the output
(logits). Parameters are named ``layer/param`` and ordered as the spec lists them; weights
import and export as that ordered list of float32 arrays.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from fedge.shared.nn.backend import Array, to_device
from fedge.shared.nn.core import Parameter, Variable, as_variable
from fedge.shared.nn.layers import LAYERS, Layer, SpecError

Weights = list[np.ndarray]


class Model:
    """A built spec: a small graph of layers with named parameters."""

    def __init__(self, spec: dict[str, Any], seed: int = 0) -> None:
        self.spec = copy.deepcopy(spec)
        self.name = str(spec.get("name", "model"))
        self.input_shape = tuple(int(d) for d in _required(spec, "input_shape"))
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        self.inputs: list[list[str]] = []
        self._build(_required(spec, "layers"))

    @classmethod
    def from_json(cls, text: str, seed: int = 0) -> Model:
        return cls(json.loads(text), seed)

    def _build(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            raise SpecError("expected at least one layer, got none")
        shapes: dict[str, tuple[int, ...]] = {"input": self.input_shape}
        previous = "input"
        for index, entry in enumerate(entries):
            options = dict(entry)
            kind = options.pop("type", None)
            if kind not in LAYERS:
                raise SpecError(f"layer {index}: expected type in {sorted(LAYERS)}, got {kind!r}")
            name = str(options.pop("name", f"{kind}_{index}"))
            if name in shapes:
                raise SpecError(f"layer {index}: name {name!r} is already used")
            sources = options.pop("inputs", [previous])
            missing = [s for s in sources if s not in shapes]
            if missing:
                raise SpecError(f"layer {name!r}: inputs {missing} are not earlier layers")
            layer = LAYERS[kind](name, **options)
            shapes[name] = layer.build([shapes[s] for s in sources], self.rng)
            self.layers.append(layer)
            self.inputs.append(list(sources))
            previous = name
        self.output_shape = shapes[previous]

    # -- running -----------------------------------------------------------------------
    def __call__(self, x: Array | Variable) -> Variable:
        x = as_variable(x)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{self.name}: expected input (N, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        values: dict[str, Variable] = {"input": x}
        y = x
        for layer, sources in zip(self.layers, self.inputs, strict=True):
            y = layer(*(values[s] for s in sources))
            values[layer.name] = y
        return y

    # -- parameters --------------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.params.values()]

    @property
    def parameter_names(self) -> list[str]:
        return [p.name or "" for p in self.parameters()]

    @property
    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def train_only(self, names: Collection[str] = ()) -> None:
        """Train only the named parameters (every one when empty); the rest keep their values and,
        where nothing before them trains, cost no backward pass at all (fine-tuning a head)."""
        unknown = sorted(set(names) - set(self.parameter_names))
        if unknown:
            raise ValueError(f"{self.name}: expected parameter names of the model, got {', '.join(unknown)}")
        for name, p in zip(self.parameter_names, self.parameters(), strict=True):
            p.requires_grad = not names or name in names

    @property
    def trainable(self) -> list[Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def cleargrads(self) -> None:
        for p in self.parameters():
            p.cleargrad()

    def get_weights(self) -> Weights:
        """Copies of every parameter, as float32 arrays on the CPU, in spec order."""
        return [np.array(to_device(p.data, "cpu"), dtype=np.float32) for p in self.parameters()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        params = self.parameters()
        check_weights(weights, [p.shape for p in params], self.name)
        for p, w in zip(params, weights, strict=True):
            p.data[...] = w

    def to(self, device: str) -> Model:
        for p in self.parameters():
            p.data = to_device(p.data, device)
        return self


def check_weights(weights: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]], owner: str = "model") -> None:
    """Refuse weights that do not fit, saying what was expected."""
    if len(weights) != len(shapes):
        raise ValueError(f"{owner}: expected {len(shapes)} tensors, got {len(weights)}")
    for i, (w, shape) in enumerate(zip(weights, shapes, strict=True)):
        if tuple(w.shape) != tuple(shape):
            raise ValueError(f"{owner}: tensor {i}: expected shape {tuple(shape)}, got {tuple(w.shape)}")


def _required(spec: dict[str, Any], key: str) -> Any:
    if key not in spec:
        raise SpecError(f"model spec: expected key {key!r}, got keys {sorted(spec)}")
    return spec[key]
