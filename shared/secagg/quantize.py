"""Fixed-point quantisation into uint32, sized so that a cohort's sum cannot wrap mod 2^32.

    bits   = 32 − ceil(log2 n_clients)          (= 32 − bit_length(n_clients − 1))
    L      = 2^bits − 1                          the largest quantised value
    scaled = ((min(max(x, −clip), clip) + clip) / (2·clip)) · L      in binary64, in this order
    q      = floor(scaled) + (1 if u < scaled − floor(scaled) else 0),   u uniform in [0, 1)

n_clients values of at most L sum to at most n·(2^bits − 1) ≤ 2^32 − n, so the uint32 sum is exact.
Dequantising a sum of ``count`` values: total·(2·clip / L) − count·clip, in binary64, then float32.

Error bound: stochastic rounding is unbiased (E[q] = scaled) and moves each value by less than
one step, step = 2·clip / L. So the dequantised sum differs from the sum of the clipped values by
less than count·step (standard deviation at most √count·step/2), plus float32 rounding of the
result (at most count·clip·2^-24).
"""

from __future__ import annotations

import math

import numpy as np

MAX_CLIENTS = 0xFFFF


class Quantizer:
    __slots__ = ("bits", "clip", "levels", "n_clients")

    def __init__(self, clip: float, n_clients: int) -> None:
        if isinstance(clip, bool) or not isinstance(clip, int | float) or not math.isfinite(clip) or clip <= 0:
            raise ValueError(f"clip must be a finite number > 0, got {clip!r}")
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or not 1 <= n_clients <= MAX_CLIENTS:
            raise ValueError(f"n_clients must be an int in 1..{MAX_CLIENTS}, got {n_clients!r}")
        self.clip = float(clip)
        self.n_clients = n_clients
        self.bits = 32 - (n_clients - 1).bit_length()
        self.levels = (1 << self.bits) - 1

    @property
    def step(self) -> float:
        return 2 * self.clip / self.levels

    def error_bound(self, count: int) -> float:
        """The largest possible |dequantised sum − sum of clipped values| for ``count`` clients."""
        return count * (self.step + self.clip * 2.0**-24)

    def quantize(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        values = self._finite(x)
        return self.quantize_with(values, rng.random(values.shape))

    def quantize_with(self, x: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """``quantize`` with the rounding draws given: what another implementation replays."""
        values = self._finite(x)
        u = np.asarray(uniforms, dtype=np.float64)
        if u.shape != values.shape:
            raise ValueError(f"expected one uniform per value, shape {values.shape}, got {u.shape}")
        if u.size and not (u.min() >= 0.0 and u.max() < 1.0):
            raise ValueError("uniforms must lie in [0, 1)")
        # ((clip(x) + clip) / (2·clip)) · L, the same operations in the same order, in place
        scaled = np.clip(values, -self.clip, self.clip)
        scaled += self.clip
        scaled /= 2 * self.clip
        scaled *= self.levels
        low = np.floor(scaled)
        scaled -= low  # now the fraction
        return (low + (u < scaled)).astype(np.uint32)

    def dequantize_sum(self, total: np.ndarray, count: int) -> np.ndarray:
        """The float32 sum of the ``count`` clipped values whose quantisations add up to ``total``."""
        if not isinstance(total, np.ndarray) or total.dtype != np.uint32:
            raise TypeError(f"total must be a uint32 array, got {getattr(total, 'dtype', type(total).__name__)}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= self.n_clients:
            raise ValueError(f"count must be an int in 1..n_clients={self.n_clients}, got {count!r}")
        return (total.astype(np.float64) * (2 * self.clip / self.levels) - count * self.clip).astype(np.float32)

    @staticmethod
    def _finite(x: np.ndarray) -> np.ndarray:
        values = np.asarray(x, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("values to quantise must be finite (no NaN or infinity)")
        return values

    def __repr__(self) -> str:
        return f"Quantizer(clip={self.clip}, n_clients={self.n_clients}, bits={self.bits})"
