"""Layers: each is built once from its spec entry and the shapes it will receive.

``build`` creates the parameters (Glorot-uniform kernels and zero biases, the TF.js defaults;
``kernel_initializer: "he_uniform"`` for deep ReLU stacks without normalisation, where Glorot
shrinks the signal layer by layer and training stalls at chance for hundreds of steps) and
returns the output shape, so a whole model can be shape-checked before any data flows.
Shapes exclude the batch axis and are channels-last.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from fedge.shared.nn import functions as F
from fedge.shared.nn.core import Parameter, Variable

Shape = tuple[int, ...]
# kernel initialisers, uniform in ±sqrt(6 / n): n from the kernel's (fan in, fan out)
INITIALIZERS = {"glorot_uniform": lambda fan_in, fan_out: fan_in + fan_out, "he_uniform": lambda fan_in, _: fan_in}
KERNEL_OPTIONS = {"activation": "linear", "use_bias": True, "kernel_initializer": "glorot_uniform"}


class SpecError(ValueError):
    """A model spec that cannot be built; the message names the layer and the rule."""


class Layer:
    """One node of a model graph. Subclasses declare ``kind`` and the options they accept."""

    kind: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}  # option name -> default
    arity: ClassVar[int] = 1

    def __init__(self, name: str, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            raise SpecError(
                f"layer {name!r} ({self.kind}): unknown option(s) {sorted(unknown)}, expected {sorted(self.options)}"
            )
        self.name = name
        self.config = {**self.options, **options}
        self.params: dict[str, Parameter] = {}
        self.rng: np.random.Generator = np.random.default_rng()

    def build(self, shapes: list[Shape], rng: np.random.Generator) -> Shape:
        self.rng = rng
        if len(shapes) != self.arity and self.arity != 0:
            raise SpecError(f"layer {self.name!r} ({self.kind}): expected {self.arity} input(s), got {len(shapes)}")
        return self.output_shape(*shapes)

    def output_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def __call__(self, *xs: Variable) -> Variable:
        raise NotImplementedError

    def add_param(
        self, name: str, shape: Shape, fan: tuple[int, int] | None, rng: np.random.Generator, fill: float = 0.0
    ) -> None:
        """A kernel when ``fan`` (in, out) is given, by the layer's initialiser; else ``fill`` (biases
        and shifts 0, scales 1)."""
        if fan is None:
            data = np.full(shape, fill, np.float32)
        else:
            initializer = self.config["kernel_initializer"]
            if initializer not in INITIALIZERS:
                raise SpecError(
                    f"layer {self.name!r}: expected kernel_initializer in {sorted(INITIALIZERS)}, got {initializer!r}"
                )
            limit = math.sqrt(6.0 / INITIALIZERS[initializer](*fan))
            data = rng.uniform(-limit, limit, shape).astype(np.float32)
        self.params[name] = Parameter(data, name=f"{self.name}/{name}")


def _activate(y: Variable, activation: str) -> Variable:
    return F.relu(y) if activation == "relu" else y


def _check_activation(layer: Layer) -> None:
    if layer.config["activation"] not in ("linear", "relu"):
        raise SpecError(
            f"layer {layer.name!r}: expected activation 'linear' or 'relu', got {layer.config['activation']!r}"
        )


class Dense(Layer):
    kind = "dense"
    options: ClassVar[dict[str, Any]] = {"units": None, **KERNEL_OPTIONS}

    def output_shape(self, shape: Shape) -> Shape:
        _check_activation(self)
        if len(shape) != 1:
            raise SpecError(
                f"layer {self.name!r} (dense): expected a flat input, got shape {shape}; add a flatten layer"
            )
        units = int(self.config["units"] or 0)
        if units < 1:
            raise SpecError(f"layer {self.name!r} (dense): expected units >= 1, got {self.config['units']!r}")
        self.add_param("kernel", (shape[0], units), (shape[0], units), self.rng)
        if self.config["use_bias"]:
            self.add_param("bias", (units,), None, self.rng)
        return (units,)

    def __call__(self, x: Variable) -> Variable:
        y = F.linear(x, self.params["kernel"], self.params.get("bias"))
        return _activate(y, self.config["activation"])


class Conv(Layer):
    """Convolution over ``spatial`` dims with an (*K, C, O) kernel."""

    spatial: ClassVar[int]
    options: ClassVar[dict[str, Any]] = {
        "filters": None,
        "kernel_size": None,
        "strides": 1,
        "padding": "valid",
        **KERNEL_OPTIONS,
    }

    def output_shape(self, shape: Shape) -> Shape:
        _check_activation(self)
        if len(shape) != self.spatial + 1:
            raise SpecError(
                f"layer {self.name!r} ({self.kind}): expected a {self.spatial + 1}-d input (..., channels), got {shape}"
            )
        kernel = self._tuple("kernel_size")
        strides = self._tuple("strides")
        filters = int(self.config["filters"] or 0)
        if filters < 1:
            raise SpecError(f"layer {self.name!r} ({self.kind}): expected filters >= 1, got {self.config['filters']!r}")
        out = tuple(
            F.pad_amounts(s, k, st, self.config["padding"])[2]
            for s, k, st in zip(shape[:-1], kernel, strides, strict=True)
        )
        if min(out) < 1:
            raise SpecError(f"layer {self.name!r} ({self.kind}): kernel {kernel} does not fit input {shape}")
        receptive = math.prod(kernel)
        self.add_param("kernel", (*kernel, shape[-1], filters), (receptive * shape[-1], receptive * filters), self.rng)
        if self.config["use_bias"]:
            self.add_param("bias", (filters,), None, self.rng)
        return (*out, filters)

    def _tuple(self, key: str) -> Shape:
        value = self.config[key]
        values = (value,) * self.spatial if isinstance(value, int) else tuple(value or ())
        if len(values) != self.spatial or min(values) < 1:
            raise SpecError(
                f"layer {self.name!r} ({self.kind}): expected {key} as {self.spatial} positive int(s), got {value!r}"
            )
        return values

    def __call__(self, x: Variable) -> Variable:
        y = F.conv(x, self.params["kernel"], self.params.get("bias"), self._tuple("strides"), self.config["padding"])
        return _activate(y, self.config["activation"])


class Conv1D(Conv):
    kind = "conv1d"
    spatial = 1


class Conv2D(Conv):
    kind = "conv2d"
    spatial = 2


class MaxPool(Layer):
    spatial: ClassVar[int]
    options: ClassVar[dict[str, Any]] = {"pool_size": 2, "strides": None, "padding": "valid"}

    def _pool(self) -> tuple[Shape, Shape]:
        pool = self.config["pool_size"]
        pool = (pool,) * self.spatial if isinstance(pool, int) else tuple(pool)
        strides = self.config["strides"] or pool
        strides = (strides,) * self.spatial if isinstance(strides, int) else tuple(strides)
        return pool, strides

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != self.spatial + 1:
            raise SpecError(f"layer {self.name!r} ({self.kind}): expected a {self.spatial + 1}-d input, got {shape}")
        pool, strides = self._pool()
        out = tuple(
            F.pad_amounts(s, k, st, self.config["padding"])[2]
            for s, k, st in zip(shape[:-1], pool, strides, strict=True)
        )
        if min(out) < 1:
            raise SpecError(f"layer {self.name!r} ({self.kind}): pool {pool} does not fit input {shape}")
        return (*out, shape[-1])

    def __call__(self, x: Variable) -> Variable:
        pool, strides = self._pool()
        return F.max_pool(x, pool, strides, self.config["padding"])


class MaxPool1D(MaxPool):
    kind = "maxpool1d"
    spatial = 1


class MaxPool2D(MaxPool):
    kind = "maxpool2d"
    spatial = 2


class GlobalAvgPool(Layer):
    kind = "globalavgpool"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) < 2:
            raise SpecError(f"layer {self.name!r} (globalavgpool): expected spatial axes, got {shape}")
        return (shape[-1],)

    def __call__(self, x: Variable) -> Variable:
        return F.global_avg_pool(x)


class ReLU(Layer):
    kind = "relu"

    def __call__(self, x: Variable) -> Variable:
        return F.relu(x)


class Dropout(Layer):
    kind = "dropout"
    options: ClassVar[dict[str, Any]] = {"rate": 0.5}

    def output_shape(self, shape: Shape) -> Shape:
        if not 0.0 <= float(self.config["rate"]) < 1.0:
            raise SpecError(f"layer {self.name!r} (dropout): expected 0 <= rate < 1, got {self.config['rate']!r}")
        return shape

    def __call__(self, x: Variable) -> Variable:
        return F.dropout(x, float(self.config["rate"]), self.rng)


class GroupNorm(Layer):
    """Group normalisation (Wu & He 2018) with a per-channel scale and offset, then the activation.

    Batch-independent, so every device normalises alike whatever its labels; it lets SqueezeNet
    train at a useful rate without BatchNorm's running statistics, which FedAvg cannot average.
    """

    kind = "groupnorm"
    options: ClassVar[dict[str, Any]] = {"groups": 8, "epsilon": 1e-5, "activation": "linear"}

    def output_shape(self, shape: Shape) -> Shape:
        _check_activation(self)
        groups = self.config["groups"]
        if len(shape) < 2 or not isinstance(groups, int) or groups < 1 or shape[-1] % groups:
            raise SpecError(
                f"layer {self.name!r} (groupnorm): expected groups dividing the channels of a spatial input, "
                f"got groups={groups!r} for shape {shape}"
            )
        if not float(self.config["epsilon"]) > 0:
            raise SpecError(f"layer {self.name!r} (groupnorm): expected epsilon > 0, got {self.config['epsilon']!r}")
        self.add_param("gamma", (shape[-1],), None, self.rng, fill=1.0)
        self.add_param("beta", (shape[-1],), None, self.rng)
        return shape

    def __call__(self, x: Variable) -> Variable:
        y = F.group_norm(x, self.config["groups"], float(self.config["epsilon"]))
        return _activate(y * self.params["gamma"] + self.params["beta"], self.config["activation"])


class Flatten(Layer):
    kind = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def __call__(self, x: Variable) -> Variable:
        return F.reshape(x, (x.shape[0], -1))


class Concat(Layer):
    """Joins branches along the channel axis, as SqueezeNet's fire modules need."""

    kind = "concat"
    arity = 0  # any number >= 2

    def output_shape(self, *shapes: Shape) -> Shape:
        if len(shapes) < 2 or len({s[:-1] for s in shapes}) != 1:
            raise SpecError(
                f"layer {self.name!r} (concat): expected >= 2 inputs equal but for channels, got {list(shapes)}"
            )
        return (*shapes[0][:-1], sum(s[-1] for s in shapes))

    def __call__(self, *xs: Variable) -> Variable:
        return F.concat(list(xs), axis=-1)


LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (Dense, Conv1D, Conv2D, MaxPool1D, MaxPool2D, GlobalAvgPool, GroupNorm, ReLU, Dropout, Flatten, Concat)
}
