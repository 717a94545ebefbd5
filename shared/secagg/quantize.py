"""Fixed-point quantisation into uint32, sized so that a cohort's sum cannot wrap mod 2^32.

    bits   = 32 − ceil(log2 n_clients)          (= 32 − bit_length(n_clients − 1))
    L      = 2^bits − 1,  H = L / 2              L the largest quantised value; H exact in binary64
    a      = L / (2·clip)                        integer units per 1.0 of input
    scaled = min(max(x·a, −H), H) + H            in binary64, in this order: 0 … L
    q      = floor(scaled + u·(1 − 2^-20)),      u uniform in [0, 1)

q is L·(clip(x) + clip)/(2·clip) rounded up with probability its fraction (less by at most 2^-20),
in six whole-array operations where rounding up by comparing u with the fraction takes ten. u is
scaled below 1 − 2^-20 so that scaled + u·(1 − 2^-20) never rounds to the next integer in
binary64 (its unit in the last place is at most 2^-21 below 2^32): q ≤ L even at the clip.
u is drawn on the device (``keyed_draws``: AES words · 2^-32) and is no part of the byte format.

n_clients values of at most L sum to at most n·(2^bits − 1) ≤ 2^32 − n, so the uint32 sum is exact.
Dequantising a sum of ``count`` values: read the uint32 total as the integer r ≡ total (mod 2^32)
in [c − 2^31, c + 2^31), c = ⌈count·L/2⌉ (about the quantisation of count zeros), then
r·(2·clip / L) − count·clip, in binary64, then float32. A sum without noise lies in
[0, count·L], inside that window, so r = total: exactly the plain reading.

Distributed DP noise (docs/privacy.md) is added to q on each device and can take the sum below 0
or past 2^32. It is never clamped; the window above reads it back as long as the sum stays within
2^31 of c. ``noise_room`` says how far the noise may go when every coordinate is known to lie in
[−bound, bound] (an update clipped to L2 norm C has no coordinate beyond C), and
``tolerates_noise`` whether NOISE_TAILS standard deviations of n_clients devices' noise fit in it.
The coordinator makes room by widening the plan's clip (shared/privacy/distributed.py): a
coarser step, the same byte format.

Error bound: stochastic rounding is unbiased but for the 2^-20 (E[q] lies within 2^-20 of a step
below scaled) and moves each value by less than one step, step = 2·clip / L. So the dequantised
sum differs from the sum of the clipped values by less than count·step (standard deviation at
most √count·step/2), plus float32 rounding of the result (at most count·clip·2^-24). Added noise
comes on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fedge.shared.secagg.prg import SEED_SIZE, SEGMENT, Expander, check_seed

MAX_CLIENTS = 0xFFFF
# Noise on a sum is read back correctly while within this many of its standard deviations: a sum of
# discrete Gaussians is sub-Gaussian (Canonne, Kamath & Steinke 2020), so it strays further with
# probability at most 2·exp(−12²/2) ≈ 1e-31 per coordinate.
NOISE_TAILS = 12.0
_HALF = 1 << 31
SLICE = SEGMENT  # values rounded at a time: one slice per masked segment, its temporaries in cache
SPAN = 1.0 - 2.0**-20  # the draws' reach: scaled + u·SPAN stays below the next integer
_COORDINATE_SLACK = 2.0**-20  # an update clipped to norm C in float32 may exceed C by a relative ~1e-7


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

    @property
    def scale(self) -> float:
        """Integer units per 1.0 of input: levels / (2·clip), the s of quantised_sensitivity."""
        return self.levels / (2 * self.clip)

    def noise_room(self, bound: float) -> float:
        """How far noise may move a sum of up to n_clients quantised values without being misread.

        Every value's coordinates are assumed within [−bound, bound] (dp_clip for a clipped update;
        the quantiser clamps at clip anyway). Each quantised coordinate then lies within
        bound·scale + 2 of L/2 (rounding moves it by less than 1; the rest is float slack), a sum of
        up to n_clients of them within n_clients·(bound·scale + 2) of c, and the dequantiser's
        window reaches 2^31 − 1 from c.
        Negative: no room at all (a full range of values already fills 32 bits).
        """
        if not (_is_number(bound) and math.isfinite(bound) and bound > 0):
            raise ValueError(f"bound must be a finite number > 0, got {bound!r}")
        reach = min(bound * (1 + _COORDINATE_SLACK), self.clip) * self.scale + 2.0
        return _HALF - 1.0 - self.n_clients * reach

    def tolerates_noise(self, client_stddev: float, bound: float) -> bool:
        """Whether NOISE_TAILS standard deviations of the noise of n_clients devices, each adding
        discrete Gaussian noise of ``client_stddev`` integer units, fit in ``noise_room(bound)``."""
        if not (_is_number(client_stddev) and math.isfinite(client_stddev) and client_stddev >= 0):
            raise ValueError(f"client_stddev must be a finite number >= 0, got {client_stddev!r}")
        return NOISE_TAILS * client_stddev * math.sqrt(self.n_clients) <= self.noise_room(bound)

    def error_bound(self, count: int) -> float:
        """The largest possible |dequantised sum − sum of clipped values| for ``count`` clients."""
        return count * (self.step + self.clip * 2.0**-24)

    def quantize(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.deferred(x, rng).result().reshape(np.shape(x))

    def deferred(self, x: np.ndarray, rng: np.random.Generator, noise: np.ndarray | None = None) -> Deferred:
        """``x`` to quantise a slice at a time when asked (``Deferred.fill``), with ``noise``
        (integers, added mod 2^32) on top: masking threads quantise the segments they are about to
        mask. The rounding draws come from AES keyed by 32 bytes of ``rng`` (``keyed_draws``)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        values = self._finite(x).reshape(-1)
        if noise is not None:
            noise = np.asarray(noise)
            if noise.dtype.kind not in "iu" or noise.size != values.size:
                raise ValueError(f"expected {values.size} integers of noise, got {noise.dtype} {noise.shape}")
            noise = noise.reshape(-1).astype(np.uint32)  # two's complement: wraps mod 2^32 like the masks
        return Deferred(self, values, keyed_draws(rng.bytes(SEED_SIZE)), noise)

    def quantize_with(self, x: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """``quantize`` with the rounding draws given: what another implementation replays."""
        values = self._finite(x)
        u = np.asarray(uniforms, dtype=np.float64)
        if u.shape != values.shape:
            raise ValueError(f"expected one uniform per value, shape {values.shape}, got {u.shape}")
        if u.size and not (u.min() >= 0.0 and u.max() < 1.0):
            raise ValueError("uniforms must lie in [0, 1)")
        offsets = u.reshape(-1) * SPAN
        rounded = Deferred(self, values.reshape(-1), lambda low, high, out: offsets[low:high]).result()
        return rounded.reshape(values.shape)

    def _round(self, x: np.ndarray, offsets: np.ndarray, out: np.ndarray, scaled: np.ndarray) -> None:
        """floor(min(max(x·a, −H), H) + H + offsets) into ``out``, in binary64 in this order;
        ``offsets`` are the draws times SPAN and ``scaled`` a float64 row of x's size."""
        half = self.levels / 2
        np.multiply(x, np.float64(self.scale), out=scaled)
        np.clip(scaled, -half, half, out=scaled)
        scaled += half
        scaled += offsets
        np.copyto(out, scaled, casting="unsafe")  # truncation: floor of a number in 0 … L + 1 − 2^-21

    def dequantize_sum(self, total: np.ndarray, count: int) -> np.ndarray:
        """The float32 sum of the ``count`` clipped values whose quantisations add up to ``total``."""
        if not isinstance(total, np.ndarray) or total.dtype != np.uint32:
            raise TypeError(f"total must be a uint32 array, got {getattr(total, 'dtype', type(total).__name__)}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= self.n_clients:
            raise ValueError(f"count must be an int in 1..n_clients={self.n_clients}, got {count!r}")
        # the integer ≡ total (mod 2^32) nearest the centre c: total itself for any sum without noise
        centre = (count * self.levels + 1) // 2
        out = np.empty(total.shape, np.float32)
        flat, flat_out = total.reshape(-1), out.reshape(-1)
        for low in range(0, flat.size, SLICE):  # a slice at a time: the int64 and float64 temporaries stay in cache
            wide = flat[low : low + SLICE].astype(np.int64)
            wide -= centre - _HALF
            wide &= 0xFFFFFFFF
            wide += centre - _HALF
            flat_out[low : low + SLICE] = wide.astype(np.float64) * (2 * self.clip / self.levels) - count * self.clip
        return out

    @staticmethod
    def _finite(x: np.ndarray) -> np.ndarray:
        """``x`` as a float32 or float64 array (each slice is copied to float64 when rounded),
        all of it finite."""
        values = np.asarray(x)
        if values.dtype not in (np.float32, np.float64):
            values = np.array(x, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("values to quantise must be finite (no NaN or infinity)")
        return values

    def __repr__(self) -> str:
        return f"Quantizer(clip={self.clip}, n_clients={self.n_clients}, bits={self.bits})"


Draws = Callable[[int, int, np.ndarray], np.ndarray]  # (low, high, scratch) → u·SPAN for values low … high


@dataclass(frozen=True)
class Deferred:
    """An update to quantise slice by slice, in whichever threads ask, in any order: each slice's
    draws depend only on where it lies, so the result is the same bytes however it is split."""

    quantizer: Quantizer
    values: np.ndarray  # flat and finite, float32 or float64
    draws: Draws
    noise: np.ndarray | None = None  # uint32

    @property
    def size(self) -> int:
        return self.values.size

    def fill(self, low: int, out: np.ndarray) -> None:
        """Quantises values ``low`` … ``low + out.size`` into ``out``; ``low`` is a multiple of
        SLICE (a slice's float64 temporaries stay in cache while it is rounded)."""
        if low % SLICE or low + out.size > self.size:
            raise ValueError(f"expected a slice start and length within {self.size} values, got {low}, {out.size}")
        rows = np.empty((2, min(SLICE, out.size)))
        for start in range(0, out.size, SLICE):
            stop = min(start + SLICE, out.size)
            n = stop - start
            offsets = self.draws(low + start, low + stop, rows[1, :n])
            self.quantizer._round(self.values[low + start : low + stop], offsets, out[start:stop], rows[0, :n])
        if self.noise is not None:
            np.add(out, self.noise[low : low + out.size], out=out)

    def result(self) -> np.ndarray:
        out = np.empty(self.size, np.uint32)
        self.fill(0, out)
        return out


def keyed_draws(seed: bytes) -> Draws:
    """Rounding draws: the slice starting at value ``low`` (a multiple of SLICE) reads the
    AES-256-GCM keystream of ``seed`` under the nonce low / SLICE (``prg.Expander``) as uint32
    words r, u = r · 2^-32. Returned times SPAN in one multiplication, r · (2^-32·SPAN), which is
    (r · 2^-32) · SPAN bit for bit (2^-32 scales exactly). 2.3× faster than numpy's generator
    here, and any slice can be drawn alone. Only the device sees them: no part of the byte format."""
    check_seed(seed)

    def draws(low: int, high: int, out: np.ndarray) -> np.ndarray:
        return np.multiply(Expander(seed).segment(low // SLICE, high - low), 2.0**-32 * SPAN, out=out)

    return draws


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
