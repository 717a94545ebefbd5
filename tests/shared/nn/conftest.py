"""The one gradient-check helper every op test uses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fedge.shared.nn import Variable


def numerical_gradient(f: Callable[..., Variable], xs: list[np.ndarray], i: int, eps: float = 1e-6) -> np.ndarray:
    """Central differences of sum(f(xs) * weights) with respect to xs[i], in float64."""
    x = xs[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = float(f(*[Variable(a) for a in xs]).data.sum())
        x[idx] = old - eps
        minus = float(f(*[Variable(a) for a in xs]).data.sum())
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def check_gradient(
    f: Callable[..., Variable],
    *shapes: tuple[int, ...],
    reference: Callable[..., np.ndarray] | None = None,
    seed: int = 0,
    positive: bool = False,
) -> None:
    """Check f's forward against ``reference`` (numpy) and its gradient against finite differences.

    The output is weighted by a fixed random tensor before summing, so every output element's
    gradient path is exercised with a distinct coefficient.
    """
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s) for s in shapes]
    if positive:
        xs = [np.abs(x) + 0.5 for x in xs]
    out_shape = f(*[Variable(x) for x in xs]).shape
    weights = rng.standard_normal(out_shape)

    def weighted(*vs: Variable) -> Variable:
        return f(*vs) * weights

    inputs = [Variable(x.copy()) for x in xs]
    y = f(*inputs)
    if reference is not None:
        np.testing.assert_allclose(y.data, reference(*xs), rtol=1e-6, atol=1e-9)
    (y * weights).sum().backward()
    for i, v in enumerate(inputs):
        expected = numerical_gradient(weighted, [x.copy() for x in xs], i)
        assert v.grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(v.grad.data, expected, rtol=1e-5, atol=1e-7, err_msg=f"gradient of input {i}")


@pytest.fixture
def gradcheck() -> Callable[..., None]:
    return check_gradient
