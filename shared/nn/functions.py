"""The ops. Only those that need their own backward are Function classes; the rest compose them.

Primitives: add, mul, neg, sub, div, pow, exp, log, sum, sum_to, broadcast_to, reshape,
transpose, matmul, get_item, relu, im2col/col2im, max_pool, concat, softmax_cross_entropy.

Fused: group_norm (its backward is closed-form; the statistics are constants to any higher order).

Composed: linear, conv, global_avg_pool, mean, softmax, dropout, accuracy.
All spatial ops are channels-last: (N, W, C) or (N, H, W, C), kernels (kw, C, O) or
(kh, kw, C, O) — the layout of TF.js, so weights move between trainers untouched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedge.shared.nn.backend import Array, get_array_module
from fedge.shared.nn.core import Function, Variable, as_variable, is_training

Shape = tuple[int, ...]


def _raw(x: Any) -> Array:
    return x.data if isinstance(x, Variable) else x


# -- arithmetic with broadcasting -----------------------------------------------------------
def _unbroadcast(gx: Variable, shape: Shape) -> Variable:
    return gx if gx.shape == shape else sum_to(gx, shape)


class Add(Function):
    def forward(self, x0: Array, x1: Array) -> Array:
        return x0 + x1

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        return _unbroadcast(gy, x0.shape), _unbroadcast(gy, x1.shape)


class Mul(Function):
    def forward(self, x0: Array, x1: Array) -> Array:
        return x0 * x1

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        return _unbroadcast(gy * x1, x0.shape), _unbroadcast(gy * x0, x1.shape)


class Neg(Function):
    def forward(self, x: Array) -> Array:
        return -x

    def backward(self, gy: Variable) -> Variable:
        return -gy


class Sub(Function):
    def forward(self, x0: Array, x1: Array) -> Array:
        return x0 - x1

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        return _unbroadcast(gy, x0.shape), _unbroadcast(-gy, x1.shape)


class Div(Function):
    def forward(self, x0: Array, x1: Array) -> Array:
        return x0 / x1

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = gy * (-x0 / (x1 * x1))
        return _unbroadcast(gx0, x0.shape), _unbroadcast(gx1, x1.shape)


class Pow(Function):
    def __init__(self, c: float) -> None:
        self.c = c

    def forward(self, x: Array) -> Array:
        return x**self.c

    def backward(self, gy: Variable) -> Variable:
        (x,) = self.inputs
        return gy * (self.c * x ** (self.c - 1))


class Exp(Function):
    def forward(self, x: Array) -> Array:
        return get_array_module(x).exp(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * self.outputs[0]()  # type: ignore[operator]


class Log(Function):
    def forward(self, x: Array) -> Array:
        return get_array_module(x).log(x)

    def backward(self, gy: Variable) -> Variable:
        return gy / self.inputs[0]


def add(x0: Any, x1: Any) -> Variable:
    return Add()(x0, x1)


def mul(x0: Any, x1: Any) -> Variable:
    return Mul()(x0, x1)


def neg(x: Any) -> Variable:
    return Neg()(x)


def sub(x0: Any, x1: Any) -> Variable:
    return Sub()(x0, x1)


def rsub(x0: Any, x1: Any) -> Variable:
    return Sub()(x1, x0)


def div(x0: Any, x1: Any) -> Variable:
    return Div()(x0, x1)


def rdiv(x0: Any, x1: Any) -> Variable:
    return Div()(x1, x0)


def pow(x: Any, c: float) -> Variable:
    return Pow(c)(x)


def exp(x: Any) -> Variable:
    return Exp()(x)


def log(x: Any) -> Variable:
    return Log()(x)


# -- shapes -----------------------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy: Variable) -> Variable:
        return reshape(gy, self.x_shape)


class Transpose(Function):
    def __init__(self, axes: Shape | None) -> None:
        self.axes = axes

    def forward(self, x: Array) -> Array:
        return x.transpose(self.axes)

    def backward(self, gy: Variable) -> Variable:
        if self.axes is None:
            return transpose(gy)
        return transpose(gy, tuple(np.argsort(self.axes)))


class Sum(Function):
    def __init__(self, axis: int | Shape | None, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy: Variable) -> Variable:
        if not self.keepdims and self.axis is not None:
            axes = (self.axis,) if isinstance(self.axis, int) else self.axis
            shape = list(gy.shape)
            for a in sorted(ax % len(self.x_shape) for ax in axes):
                shape.insert(a, 1)
            gy = reshape(gy, tuple(shape))
        return broadcast_to(gy, self.x_shape)


class SumTo(Function):
    """Sum a broadcast result back down to ``shape`` (the adjoint of broadcasting)."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(self.shape) if s == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True)
        return y.reshape(self.shape) if lead else y

    def backward(self, gy: Variable) -> Variable:
        return broadcast_to(gy, self.x_shape)


class BroadcastTo(Function):
    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy: Variable) -> Variable:
        return sum_to(gy, self.x_shape)


class GetItem(Function):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        return x[self.index]

    def backward(self, gy: Variable) -> Variable:
        return GetItemGrad(self.index, self.x_shape)(gy)


class GetItemGrad(Function):
    def __init__(self, index: Any, shape: Shape) -> None:
        self.index, self.shape = index, shape

    def forward(self, gy: Array) -> Array:
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        xp.add.at(gx, self.index, gy)
        return gx

    def backward(self, ggx: Variable) -> Variable:
        return get_item(ggx, self.index)


def reshape(x: Any, shape: Shape) -> Variable:
    x = as_variable(x)
    return x if x.shape == tuple(shape) else Reshape(tuple(shape))(x)


def transpose(x: Any, axes: Shape | None = None) -> Variable:
    return Transpose(axes)(x)


def sum(x: Any, axis: int | Shape | None = None, keepdims: bool = False) -> Variable:
    return Sum(axis, keepdims)(x)


def sum_to(x: Any, shape: Shape) -> Variable:
    x = as_variable(x)
    return x if x.shape == tuple(shape) else SumTo(tuple(shape))(x)


def broadcast_to(x: Any, shape: Shape) -> Variable:
    x = as_variable(x)
    return x if x.shape == tuple(shape) else BroadcastTo(tuple(shape))(x)


def get_item(x: Any, index: Any) -> Variable:
    return GetItem(index)(x)


def mean(x: Any, axis: int | Shape | None = None, keepdims: bool = False) -> Variable:
    x = as_variable(x)
    y = sum(x, axis, keepdims)
    return y * (y.size / x.size)


# -- linear algebra and activations --------------------------------------------------------
class MatMul(Function):
    def forward(self, x: Array, w: Array) -> Array:
        return x @ w

    def backward(self, gy: Variable) -> tuple[Variable | None, Variable | None]:
        x, w = self.inputs
        gx = matmul(gy, transpose(w)) if self.needs_grad(0) else None
        gw = matmul(transpose(x), gy) if self.needs_grad(1) else None
        return gx, gw


def matmul(x: Any, w: Any) -> Variable:
    return MatMul()(x, w)


def linear(x: Any, w: Any, b: Any | None = None) -> Variable:
    y = matmul(x, w)
    return y if b is None else y + b


class ReLU(Function):
    def forward(self, x: Array) -> Array:
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy: Variable) -> Variable:
        return gy * self.mask.astype(gy.dtype)


def relu(x: Any) -> Variable:
    return ReLU()(x)


def softmax(x: Any, axis: int = -1) -> Variable:
    x = as_variable(x)
    shift = x.data.max(axis=axis, keepdims=True)  # constant: exact gradient, no overflow
    e = exp(x - shift)
    return e / sum(e, axis, keepdims=True)


class SoftmaxCrossEntropy(Function):
    """Mean cross-entropy of logits against integer labels, fused for numerical stability."""

    def forward(self, logits: Array, labels: Array) -> Array:
        xp = get_array_module(logits)
        shift = logits - logits.max(axis=1, keepdims=True)
        log_z = xp.log(xp.exp(shift).sum(axis=1))
        picked = shift[xp.arange(len(labels)), labels]
        return (log_z - picked).mean()

    def backward(self, gy: Variable) -> tuple[Variable, None]:
        logits, labels = self.inputs
        xp = get_array_module(logits.data)
        n, k = logits.shape
        onehot = xp.eye(k, dtype=logits.dtype)[labels.data]
        return (softmax(logits) - onehot) * (gy / n), None


def softmax_cross_entropy(logits: Any, labels: Array) -> Variable:
    return SoftmaxCrossEntropy()(logits, _raw(labels))


def accuracy(logits: Any, labels: Array) -> float:
    return float((_raw(logits).argmax(axis=1) == _raw(labels)).mean())


def dropout(x: Any, rate: float, rng: np.random.Generator | None = None) -> Variable:
    """Inverted dropout; the identity outside training mode."""
    x = as_variable(x)
    if not is_training() or rate == 0.0:
        return x
    rng = rng or np.random.default_rng()
    keep = rng.random(x.shape) >= rate
    xp = get_array_module(x.data)
    return x * xp.asarray(keep.astype(x.dtype) / (1.0 - rate))


class Concat(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: Array) -> Array:
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        bounds = np.cumsum([0] + [x.shape[self.axis] for x in self.inputs])
        lead = (slice(None),) * (self.axis % gy.ndim)
        return tuple(get_item(gy, (*lead, slice(a, b))) for a, b in itertools.pairwise(bounds))


def concat(xs: list[Any], axis: int = -1) -> Variable:
    return Concat(axis)(*xs)


# -- convolution and pooling (channels-last, 1 or 2 spatial dims) ---------------------------
def pad_amounts(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(before, after, output size) for TF's 'valid' and 'same' padding."""
    if padding == "valid":
        return 0, 0, (size - kernel) // stride + 1
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2, out
    raise ValueError(f"expected padding 'valid' or 'same', got {padding!r}")


@dataclass(frozen=True)
class Windows:
    """Where a kernel sliding over (N, *S, C) reads: padding, output size, one view per offset."""

    x_shape: Shape
    kernel: Shape
    stride: Shape
    padding: str

    @property
    def plan(self) -> list[tuple[int, int, int]]:
        spatial = self.x_shape[1:-1]
        return [pad_amounts(*a, self.padding) for a in zip(spatial, self.kernel, self.stride, strict=True)]

    @property
    def out(self) -> Shape:
        return tuple(o for _, _, o in self.plan)

    def pad(self, x: Array, value: float = 0.0) -> Array:
        pads = [(b, a) for b, a, _ in self.plan]
        if not any(b or a for b, a in pads):
            return x
        return get_array_module(x).pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)

    def crop(self, padded: Array) -> Array:
        spatial = self.x_shape[1:-1]
        return padded[(slice(None), *(slice(b, b + s) for (b, _, _), s in zip(self.plan, spatial, strict=True)))]

    def offsets(self) -> Iterator[tuple[Shape, tuple[slice, ...]]]:
        """Each kernel offset with the index of the (N, *S_out, C) view it reads."""
        for offset in itertools.product(*(range(k) for k in self.kernel)):
            view = tuple(
                slice(o, o + st * (n - 1) + 1, st) for o, st, n in zip(offset, self.stride, self.out, strict=True)
            )
            yield offset, (slice(None), *view)


class Im2col(Function):
    """(N, *S, C) -> (N, *S_out, *K, C): every kernel window as its own axes."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows

    def forward(self, x: Array) -> Array:
        xp, w = get_array_module(x), self.windows
        x = w.pad(x)
        s = x.strides
        shape = (x.shape[0], *w.out, *w.kernel, x.shape[-1])
        strides = (s[0], *(a * st for a, st in zip(s[1:-1], w.stride, strict=True)), *s[1:-1], s[-1])
        return xp.lib.stride_tricks.as_strided(x, shape, strides).copy()

    def backward(self, gy: Variable) -> Variable | None:
        return Col2im(self.windows)(gy) if self.needs_grad(0) else None


class Col2im(Function):
    """The adjoint of Im2col: add every window back where it came from."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows

    def forward(self, cols: Array) -> Array:
        xp, w = get_array_module(cols), self.windows
        padded = w.pad(xp.zeros(w.x_shape, dtype=cols.dtype))
        nd = len(w.kernel)
        for offset, view in w.offsets():
            padded[view] += cols[(slice(None),) * (1 + nd) + offset]
        return w.crop(padded)

    def backward(self, gy: Variable) -> Variable:
        return Im2col(self.windows)(gy)


class MaxPool(Function):
    """Max over each window; the gradient goes to the window's first maximum, as in TF."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows

    def forward(self, x: Array) -> Array:
        xp, w = get_array_module(x), self.windows
        padded = w.pad(x, -xp.inf)
        views = [padded[view] for _, view in w.offsets()]
        y = views[0].copy()
        for v in views[1:]:
            xp.maximum(y, v, out=y)
        taken = xp.zeros(y.shape, dtype=bool)
        masks = []
        for v in views:
            first = (v == y) & ~taken
            taken |= first
            masks.append(first)
        # (N, *S_out, *K, C), the layout Col2im reads
        self.mask = xp.stack(masks, axis=-2).reshape((*y.shape[:-1], *w.kernel, y.shape[-1]))
        return y

    def backward(self, gy: Variable) -> Variable:
        nd = len(self.windows.kernel)
        spread = reshape(gy, (*gy.shape[:-1], *(1,) * nd, gy.shape[-1])) * self.mask.astype(gy.dtype)
        return Col2im(self.windows)(spread)


def _spatial_tuple(value: int | Shape, nd: int) -> Shape:
    return (value,) * nd if isinstance(value, int) else tuple(value)


def im2col(x: Any, kernel: Shape, stride: Shape, padding: str = "valid") -> Variable:
    x = as_variable(x)
    return Im2col(Windows(x.shape, tuple(kernel), tuple(stride), padding))(x)


def conv(x: Any, w: Any, b: Any | None = None, stride: int | Shape = 1, padding: str = "valid") -> Variable:
    """Convolution over 1 or 2 spatial dims: x (N, *S, C), w (*K, C, O) -> (N, *S_out, O)."""
    w = as_variable(w)
    kernel = w.shape[:-2]
    cols = im2col(x, kernel, _spatial_tuple(stride, len(kernel)), padding)
    n, *out = cols.shape[: 1 + len(kernel)]
    patch = math.prod(w.shape[:-1])
    y = matmul(reshape(cols, (-1, patch)), reshape(w, (patch, w.shape[-1])))
    if b is not None:
        y = y + b
    return reshape(y, (n, *out, w.shape[-1]))


def max_pool(x: Any, pool: int | Shape, stride: int | Shape | None = None, padding: str = "valid") -> Variable:
    """Max pooling over 1 or 2 spatial dims; the stride defaults to the pool size, as in TF.js."""
    x = as_variable(x)
    nd = x.ndim - 2
    pool = _spatial_tuple(pool, nd)
    stride = pool if stride is None else _spatial_tuple(stride, nd)
    return MaxPool(Windows(x.shape, pool, stride, padding))(x)


def global_avg_pool(x: Any) -> Variable:
    """Mean over every spatial axis: (N, *S, C) -> (N, C)."""
    x = as_variable(x)
    return mean(x, axis=tuple(range(1, x.ndim - 1)))


class GroupNorm(Function):
    """(N, *S, C) normalised to zero mean, unit variance over each group of C // G channels.

    Fused because the composed form walks the activation a dozen times; FedAvg on label-skewed
    clients needs a batch-independent normalisation (batch statistics differ per device).
    """

    def __init__(self, groups: int, eps: float) -> None:
        self.groups, self.eps = groups, eps

    def _grouped(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1, self.groups, x.shape[-1] // self.groups)

    def forward(self, x: Array) -> Array:
        g = self._grouped(x)
        centred = g - _group_mean(g)
        self.inv = (1.0 / np.sqrt(_group_mean(centred * centred) + self.eps)).astype(x.dtype)
        self.xhat = centred * self.inv
        return self.xhat.reshape(x.shape)

    def backward(self, gy: Variable) -> Variable:
        g = reshape(gy, self.xhat.shape)
        gx = (g - _group_mean(g) - self.xhat * _group_mean(g * self.xhat)) * self.inv
        return reshape(gx, gy.shape)


def _group_mean(g: Any) -> Any:
    """Mean over (N, S, G, c)'s axes 1 and 3, kept: the long spatial axis first (a contiguous
    sum of rows; numpy's two-axis reduce walks the short channel runs one at a time)."""
    count = g.shape[1] * g.shape[3]
    if isinstance(g, Variable):
        return sum(sum(g, axis=1, keepdims=True), axis=3, keepdims=True) * (1.0 / count)
    return g.sum(axis=1, keepdims=True).sum(axis=3, keepdims=True) * (1.0 / count)


def group_norm(x: Any, groups: int, eps: float = 1e-5) -> Variable:
    return GroupNorm(groups, eps)(x)


# -- operators on Variable ----------------------------------------------------------------
def _install_operators() -> None:
    Variable.__add__ = add  # type: ignore[method-assign]
    Variable.__radd__ = add  # type: ignore[method-assign]
    Variable.__mul__ = mul  # type: ignore[method-assign]
    Variable.__rmul__ = mul  # type: ignore[method-assign]
    Variable.__neg__ = neg  # type: ignore[method-assign]
    Variable.__sub__ = sub  # type: ignore[method-assign]
    Variable.__rsub__ = rsub  # type: ignore[method-assign]
    Variable.__truediv__ = div  # type: ignore[method-assign]
    Variable.__rtruediv__ = rdiv  # type: ignore[method-assign]
    Variable.__pow__ = pow  # type: ignore[method-assign]
    Variable.__matmul__ = matmul  # type: ignore[method-assign]


_install_operators()
