"""Noise for client-level DP, in one of two places (see docs/privacy.md)::

    central       trusted server: N(0, (z·C)²) added once to the SUM of n clipped updates,
                  so the mean's noise has standard deviation z·C / n
    distributed   untrusted server, with secure aggregation (Kairouz, Liu & Steinke 2021): each
                  client adds discrete Gaussian noise of scale σ/√n to its quantised (integer)
                  update before masking; the server only ever sees the sum, whose noise is close
                  to a discrete Gaussian of scale σ

The discrete Gaussian sampler is exact (Canonne, Kamath & Steinke 2020, Algorithms 2 and 3): a
discrete Laplace proposal, kept with probability exp(-(|y| - σ²/t)² / 2σ²). Each coin
Bernoulli(exp(-γ)) (in place of their Algorithm 1) compares a uniform number with exp(-γ) in
float64 when a certified error margin makes the answer sure, and otherwise (about once in 10⁹
coins) reads more random digits and compares against exp(-γ) computed exactly enough with
`decimal`. No float rounding can bias the distribution; numpy batches keep it fast.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np

MAX_SIGMA = 2.0**40  # keeps every proposal and every float64 intermediate of the sampler exact
MIN_CLIENT_SIGMA = 2.0  # integer units; below it the sum of clients' noise drifts from a discrete Gaussian
_UNIFORM_BITS = 53  # the uniform number's first digits, drawn as an integer; more only when needed
_FLOAT_MARGIN = 1e-9  # relative error allowed for exp(-γ) in float64 (true error: ~1e-15·(1 + γ))
_TINY = 1e-300  # absolute margin for exp(-γ) that underflows


def gaussian_noise(shapes: Sequence[tuple[int, ...]], stddev: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Central DP: one N(0, stddev²) array per shape, float64 like the server's running sum.

    Add it once to the sum of n clipped updates, with stddev = noise_multiplier × clip; the mean
    (sum / n) then carries noise of standard deviation stddev / n.
    """
    _check_scale("stddev", stddev)
    return [rng.normal(0.0, stddev, size=tuple(shape)) for shape in shapes]


def mean_noise_ratio(noise_multiplier: float, dim: int, clients: int) -> float:
    """How the noise on a round's mean update compares with the largest clipped update, C.

    The sum carries noise of standard deviation z·C per coordinate (at least that, in the
    distributed mode), so the mean of ``clients`` updates carries noise of L2 norm about
    z·C·√dim / clients: this returns z·√dim / clients. Above 1 the noise outweighs any update,
    and the model hardly learns until the cohort grows (Kairouz et al. 2021 train with
    hundreds of clients per round).
    """
    _check_scale("noise_multiplier", noise_multiplier)
    if dim < 1 or clients < 1:
        raise ValueError(f"expected dim and clients ≥ 1, got {dim} and {clients}")
    return noise_multiplier * math.sqrt(dim) / clients


def client_noise_scale(total_sigma: float, n_clients: int) -> float:
    """Distributed DP: each client's discrete Gaussian scale, total_sigma / √n, so that n clients' noise sums to it.

    The sum of n discrete Gaussians of scale s is close to, not exactly, a discrete Gaussian.
    Kairouz et al. (2021, Prop. 14) bound the gap by an extra τ·d in each Rényi order, with
    τ = 10·Σₖ exp(-2π²s²·k/(k+1)) over k < n: about 6e-4 at s = 1 (too much for a model of
    d = 10⁵ coordinates), 7e-17 at s = 2. So a client's scale must be at least MIN_CLIENT_SIGMA
    integer units; a finer quantisation scale raises it. Only clients that report add noise:
    pass the fewest clients a round may commit with.
    """
    _check_scale("total_sigma", total_sigma)
    if isinstance(n_clients, bool) or not isinstance(n_clients, int | np.integer) or n_clients < 1:
        raise ValueError(f"expected a whole number of clients ≥ 1, got {n_clients!r}")
    sigma = total_sigma / math.sqrt(n_clients)
    if sigma < MIN_CLIENT_SIGMA:
        raise ValueError(
            f"expected a per-client sigma ≥ {MIN_CLIENT_SIGMA} integer units (quantise finer), "
            f"got {total_sigma} / √{n_clients} = {sigma:.4g}"
        )
    return sigma


def discrete_gaussian(shape: int | tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Exact samples of the discrete Gaussian on the integers, P(x) ∝ exp(-x² / 2σ²), as int64."""
    _check_scale("sigma", sigma)
    if sigma > MAX_SIGMA:
        raise ValueError(f"expected sigma ≤ 2^40 (integer units), got {sigma}")
    shape = (int(shape),) if isinstance(shape, int | np.integer) else tuple(shape)
    size = math.prod(shape)
    t = math.floor(sigma) + 1  # the Laplace proposal's scale (CKS Algorithm 3)
    out = np.zeros(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        y, proposed = _discrete_laplace_attempt(todo.size, t, rng)
        accepted = np.zeros(todo.size, dtype=bool)
        accepted[np.flatnonzero(proposed)[_gaussian_coins(y[proposed], sigma, t, rng)]] = True
        out[todo[accepted]] = y[accepted]
        todo = todo[~accepted]
    return out.reshape(shape)


def _gaussian_coins(y: np.ndarray, sigma: float, t: int, rng: np.random.Generator) -> np.ndarray:
    """Which Laplace proposals to keep: each with probability exp(-(|y| - σ²/t)² / 2σ²), σ² the float's exact square."""
    var, exact_var = sigma * sigma, Fraction(sigma) ** 2
    gamma = (np.abs(y) - var / t) ** 2 / (2.0 * var)
    return _bernoulli_exp_neg(gamma, lambda i: (abs(int(y[i])) - exact_var / t) ** 2 / (2 * exact_var), rng)


def _discrete_laplace_attempt(size: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One pass of CKS Algorithm 2 (P(y) ∝ exp(-|y| / t)) per slot, and which slots were not rejected."""
    u = rng.integers(0, t, size=size)
    proposed = _bernoulli_exp_neg(u / t, lambda i: Fraction(int(u[i]), t), rng)
    x = u + t * _count_successes(size, rng)
    negative = rng.integers(0, 2, size=size) == 1
    proposed &= ~(negative & (x == 0))  # +0 and -0 would count zero twice
    return np.where(negative, -x, x), proposed


def _count_successes(size: int, rng: np.random.Generator) -> np.ndarray:
    """Per slot, how many Bernoulli(exp(-1)) coins come up 1 before the first 0."""
    count = np.zeros(size, dtype=np.int64)
    active = np.arange(size)
    while active.size:
        active = active[_bernoulli_exp_neg(np.ones(active.size), lambda i: Fraction(1), rng)]
        count[active] += 1
    return count


def _bernoulli_exp_neg(gamma: np.ndarray, exact: Callable[[int], Fraction], rng: np.random.Generator) -> np.ndarray:
    """Coins, each 1 with probability exp(-gamma[i]); `exact(i)` is gamma[i] as a fraction, when float64 can't tell."""
    p = np.exp(-gamma)
    margin = _FLOAT_MARGIN * (1.0 + gamma) * p + _TINY
    digits = rng.integers(0, 2**_UNIFORM_BITS, size=gamma.size, dtype=np.int64)
    low = digits * 2.0**-_UNIFORM_BITS  # the uniform number lies in [low, low + 2^-53)
    heads = low + 2.0**-_UNIFORM_BITS <= p - margin
    unsure = ~heads & (low < p + margin)
    for i in np.flatnonzero(unsure):
        heads[i] = _exact_coin(int(digits[i]), exact(int(i)), rng)
    return heads


def _exact_coin(digits: int, gamma: Fraction, rng: np.random.Generator) -> bool:
    """Whether the uniform number that starts with `digits` (53 bits) lies below exp(-gamma): more bits until sure."""
    if gamma == 0:
        return True
    bits, precision = _UNIFORM_BITS, 40 + len(str(math.ceil(gamma)))
    while True:
        below, above = _exp_neg_bounds(gamma, precision)
        if Fraction(digits + 1, 2**bits) <= below:
            return True
        if Fraction(digits, 2**bits) >= above:
            return False
        digits = (digits << 64) | int(rng.integers(0, 2**64, dtype=np.uint64))
        bits, precision = bits + 64, precision + 20


def _exp_neg_bounds(gamma: Fraction, precision: int) -> tuple[Fraction, Fraction]:
    """Fractions below and above exp(-gamma): decimal rounds the quotient and exp correctly, to `precision` digits."""
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.Emin, ctx.Emax = precision, decimal.MIN_EMIN, decimal.MAX_EMAX
        value = Fraction((-(decimal.Decimal(gamma.numerator) / decimal.Decimal(gamma.denominator))).exp())
    slack = (gamma + 1) * Fraction(1, 10 ** (precision - 2))  # ≥ 10× both roundings' relative error
    return value * (1 - slack), value * (1 + slack)


def _check_scale(name: str, value: float) -> None:
    if not (isinstance(value, int | float | np.floating | np.integer) and math.isfinite(value) and value > 0):
        raise ValueError(f"expected a finite {name} > 0, got {value!r}")
