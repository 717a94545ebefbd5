"""Optimisers update parameters in place from their gradients.

Gradient hooks run first, in order, and may change the gradients: FedProx's proximal term is
one (it pulls local weights towards the round's global weights), so the same SGD or Adam
serves FedAvg and FedProx clients alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fedge.shared.nn.backend import get_array_module
from fedge.shared.nn.core import Parameter, Variable

GradHook = Callable[[list[Parameter]], None]


class Optimizer:
    def __init__(self, hooks: Sequence[GradHook] = ()) -> None:
        self.hooks = list(hooks)

    def step(self, params: Sequence[Parameter]) -> None:
        live = [p for p in params if p.grad is not None]
        for hook in self.hooks:
            hook(live)
        for p in live:
            self.update(p)

    def update(self, p: Parameter) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, lr: float = 0.01, momentum: float = 0.0, hooks: Sequence[GradHook] = ()) -> None:
        super().__init__(hooks)
        self.lr, self.momentum = lr, momentum
        self.velocity: dict[int, np.ndarray] = {}

    def update(self, p: Parameter) -> None:
        grad = p.grad.data  # type: ignore[union-attr]
        if self.momentum:
            v = self.velocity.get(id(p))
            v = grad.copy() if v is None else v * self.momentum + grad
            self.velocity[id(p)] = v
            grad = v
        p.data -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba) in the paper's efficient form: the bias corrections fold into the step
    size, so epsilon meets the uncorrected v (TF.js and PyTorch correct v first; the JS trainer
    follows this engine, and the difference is far below float32 noise)."""

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        hooks: Sequence[GradHook] = (),
    ) -> None:
        super().__init__(hooks)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.moments: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def step(self, params: Sequence[Parameter]) -> None:
        self.t += 1
        super().step(params)

    def update(self, p: Parameter) -> None:
        grad = p.grad.data  # type: ignore[union-attr]
        xp = get_array_module(grad)
        m, v = self.moments.get(id(p)) or (xp.zeros_like(grad), xp.zeros_like(grad))
        m += (1 - self.beta1) * (grad - m)
        v += (1 - self.beta2) * (grad * grad - v)
        self.moments[id(p)] = (m, v)
        scale = self.lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        p.data -= scale * m / (xp.sqrt(v) + self.eps)


def proximal_term(mu: float, anchor: Sequence[np.ndarray]) -> GradHook:
    """FedProx (Li et al. 2020): add mu * (w - w_global) to each gradient."""
    anchors = [np.asarray(a) for a in anchor]

    def hook(params: list[Parameter]) -> None:
        if len(params) != len(anchors):
            raise ValueError(f"proximal term: expected {len(anchors)} parameters, got {len(params)}")
        for p, a in zip(params, anchors, strict=True):
            # A new array: gradients may share storage when a backward fanned one out.
            p.grad = Variable(p.grad.data + mu * (p.data - a))  # type: ignore[union-attr]

    return hook


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}
