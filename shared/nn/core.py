"""Define-by-run autodiff: Variables remember the Function that made them.

The graph bookkeeping lives in one place, :meth:`Function.__call__`: it unwraps inputs, runs
``forward`` on raw arrays, wraps the outputs and — only when gradients are on — links them to
their creator with a generation number so :meth:`Variable.backward` can visit functions in
reverse topological order. ``backward`` methods receive and return Variables, so a backward
pass is itself a graph and higher-order gradients work.

Whether gradients are recorded and whether layers run in training mode are kept in
``ContextVar``s, not on a class: simulated clients in threads or tasks cannot disturb each
other.
"""

from __future__ import annotations

import contextlib
import heapq
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from fedge.shared.nn.backend import Array, get_array_module

_grad_enabled: ContextVar[bool] = ContextVar("fedge_nn_grad_enabled", default=True)
_training: ContextVar[bool] = ContextVar("fedge_nn_training", default=True)


@contextlib.contextmanager
def _setting(var: ContextVar[bool], value: bool) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Run without recording the graph: inference and evaluation cost no memory for it."""
    return _setting(_grad_enabled, False)


def test_mode() -> contextlib.AbstractContextManager[None]:
    """Run layers in inference mode (dropout off)."""
    return _setting(_training, False)


test_mode.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def grad_enabled() -> bool:
    return _grad_enabled.get()


def is_training() -> bool:
    return _training.get()


class Variable:
    """An array with an optional gradient and a link to the Function that created it."""

    __array_priority__ = 200  # numpy defers `ndarray op Variable` to us

    def __init__(self, data: Array, name: str | None = None, requires_grad: bool = True) -> None:
        if not hasattr(data, "shape"):
            raise TypeError(f"expected an array, got {type(data).__name__}")
        self.data = data
        self.name = name
        self.requires_grad = requires_grad
        self.grad: Variable | None = None
        self.creator: Function | None = None
        self.generation = 0

    # -- array-like surface ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = str(self.data).replace("\n", "\n" + " " * 9)
        return f"Variable({body})"

    # -- graph ---------------------------------------------------------------------------
    def set_creator(self, func: Function) -> None:
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self) -> None:
        self.grad = None

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``grad``.

        Intermediate gradients are dropped unless ``retain_grad``; the backward pass is
        recorded as a graph only with ``create_graph`` (for higher-order gradients).
        """
        if self.grad is None:
            xp = get_array_module(self.data)
            self.grad = Variable(xp.ones_like(self.data))
        pending: list[tuple[int, int, Function]] = []
        seen: set[int] = set()

        def push(f: Function | None) -> None:
            if f is not None and id(f) not in seen:
                seen.add(id(f))
                heapq.heappush(pending, (-f.generation, id(f), f))

        push(self.creator)
        while pending:
            f = heapq.heappop(pending)[2]
            outputs = [ref() for ref in f.outputs]
            gys = [o.grad for o in outputs]  # type: ignore[union-attr]
            with _setting(_grad_enabled, create_graph):
                gxs = f.backward(*gys)
                if not isinstance(gxs, tuple):
                    gxs = (gxs,)
                for x, gx in zip(f.inputs, gxs, strict=True):
                    if gx is None or not x.requires_grad:
                        continue
                    x.grad = gx if x.grad is None else x.grad + gx
                    push(x.creator)
            if not retain_grad:
                for o in outputs:
                    o.grad = None  # type: ignore[union-attr]

    def unchain(self) -> None:
        self.creator = None

    # -- convenience (the ops live in functions.py) ----------------------------------------
    def reshape(self, *shape: Any) -> Variable:
        from fedge.shared.nn import functions as F

        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return F.reshape(self, shape)

    def transpose(self, *axes: int) -> Variable:
        from fedge.shared.nn import functions as F

        return F.transpose(self, axes or None)

    @property
    def T(self) -> Variable:
        return self.transpose()

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        from fedge.shared.nn import functions as F

        return F.sum(self, axis, keepdims)

    def __getitem__(self, index: Any) -> Variable:
        from fedge.shared.nn import functions as F

        return F.get_item(self, index)


class Parameter(Variable):
    """A Variable that an optimiser updates."""


def as_array(x: Any, like: Array | None = None) -> Array:
    """Arrays pass through; Python scalars take the dtype and array module of ``like``."""
    if hasattr(x, "shape"):
        return x
    xp = np if like is None else get_array_module(like)
    return xp.asarray(x, dtype=None if like is None else like.dtype)


def as_variable(x: Any) -> Variable:
    """Variables pass through; a raw array becomes a constant that needs no gradient."""
    return x if isinstance(x, Variable) else Variable(as_array(x), requires_grad=False)


class Function:
    """A differentiable op. ``forward`` sees raw arrays; ``backward`` sees Variables.

    An op is linked into the graph only when some input requires a gradient; a backward may
    return None for an input that needs none (see ``needs_grad``) and skip that work.
    """

    inputs: tuple[Variable, ...]
    outputs: list[weakref.ref[Variable]]
    generation: int

    def __call__(self, *inputs: Any) -> Any:
        if all(isinstance(x, Variable) for x in inputs):
            variables = inputs
        else:
            like = next((x.data if isinstance(x, Variable) else x for x in inputs if hasattr(x, "shape")), None)
            variables = tuple(
                x if isinstance(x, Variable) else Variable(as_array(x, like), requires_grad=False) for x in inputs
            )
        ys = self.forward(*(v.data for v in variables))
        if not isinstance(ys, tuple):
            ys = (ys,)
        differentiable = _grad_enabled.get() and any(v.requires_grad for v in variables)
        outputs = [Variable(y, requires_grad=differentiable) for y in ys]
        if differentiable:
            self.generation = max(v.generation for v in variables)
            for output in outputs:
                output.set_creator(self)
            self.inputs = variables
            self.outputs = [weakref.ref(o) for o in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def needs_grad(self, index: int) -> bool:
        return self.inputs[index].requires_grad

    def forward(self, *xs: Array) -> Array | tuple[Array, ...]:
        raise NotImplementedError

    def backward(self, *gys: Variable) -> Variable | tuple[Variable | None, ...] | None:
        raise NotImplementedError
