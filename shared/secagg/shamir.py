"""Shamir secret sharing of 32-byte secrets over the prime field p = 2^521 − 1.

    secret s      = the 32 bytes read as a big-endian integer (< 2^256 < p)
    f(x)          = s + a_1·x + … + a_{t−1}·x^{t−1}  (mod p)
    share of x    = (x, f(x)),  x in 1 … 65535 (the holder's cohort index + 1)
    a_m, in order = 66 random bytes, big-endian, AND (2^521 − 1); the value p itself is drawn again
    encoding      = x (uint16 BE) ‖ y (66 bytes BE): 68 bytes

Any ``threshold`` shares give s back by Lagrange interpolation at 0; fewer reveal nothing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

P = 2**521 - 1
SECRET_SIZE = 32
Y_SIZE = 66
SHARE_SIZE = 2 + Y_SIZE
MAX_X = 0xFFFF

RandomBytes = Callable[[int], bytes]


class ReconstructionError(ValueError):
    """The shares cannot give the secret back."""


class NotEnoughShares(ReconstructionError):
    """Fewer shares than the threshold."""


class DuplicateShare(ReconstructionError):
    """Two shares with the same x."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_x(x: object) -> int:
    if not _is_int(x) or not 1 <= x <= MAX_X:
        raise ValueError(f"a share's x must be an int in 1..{MAX_X}, got {x!r}")
    return x


def _check_threshold(threshold: object) -> int:
    if not _is_int(threshold) or threshold < 2:
        raise ValueError(f"the threshold must be an int of at least 2, got {threshold!r}")
    return threshold


@dataclass(frozen=True)
class Share:
    x: int
    y: int

    def __post_init__(self) -> None:
        _check_x(self.x)
        if not _is_int(self.y) or not 0 <= self.y < P:
            raise ValueError(f"a share's y must be an int in 0..2^521-2, got {self.y!r}")

    def to_bytes(self) -> bytes:
        return self.x.to_bytes(2, "big") + self.y.to_bytes(Y_SIZE, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) != SHARE_SIZE:
            got = f"{len(data)} bytes" if isinstance(data, bytes | bytearray | memoryview) else type(data).__name__
            raise ValueError(f"an encoded share is {SHARE_SIZE} bytes (x uint16 BE, y 66 bytes BE), got {got}")
        return cls(int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big"))

    def __repr__(self) -> str:  # shares are secret material
        return f"Share(x={self.x})"


def _coefficient(rng: RandomBytes) -> int:
    while True:
        drawn = rng(Y_SIZE)
        if not isinstance(drawn, bytes) or len(drawn) != Y_SIZE:
            raise ValueError(f"rng({Y_SIZE}) must return {Y_SIZE} bytes, got {drawn!r:.40}")
        value = int.from_bytes(drawn, "big") & P
        if value != P:
            return value


def split(secret: bytes, threshold: int, xs: Sequence[int], rng: RandomBytes = os.urandom) -> list[Share]:
    """One share per x; ``rng(n)`` must return n uniformly random bytes (os.urandom in production)."""
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        got = f"{len(secret)} bytes" if isinstance(secret, bytes) else type(secret).__name__
        raise ValueError(f"a secret must be exactly {SECRET_SIZE} bytes, got {got}")
    _check_threshold(threshold)
    xs = [_check_x(x) for x in xs]
    if len(set(xs)) != len(xs):
        raise ValueError(f"the xs must be distinct, got {xs}")
    if len(xs) < threshold:
        raise ValueError(f"need at least threshold={threshold} xs, got {len(xs)}")
    coefficients = [int.from_bytes(secret, "big")] + [_coefficient(rng) for _ in range(threshold - 1)]
    return [Share(x, _evaluate(coefficients, x)) for x in xs]


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    y = 0
    for a in reversed(coefficients):
        y = (y * x + a) % P
    return y


_WEIGHTS: dict[tuple[int, ...], tuple[int, ...]] = {}  # per set of xs; cleared when it grows past MAX_CACHED
MAX_CACHED = 4096


def lagrange_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    """λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p, so that f(0) = Σ λ_i·f(x_i); cached per set of xs."""
    return lagrange_weights([xs])[0]


def lagrange_weights(sets: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """``lagrange_at_zero`` of each set of xs, with one modular inversion for all the sets not
    cached: the coordinator rebuilds a secret per client, each from its own neighbours' xs."""
    found = {xs: _WEIGHTS[xs] for xs in dict.fromkeys(sets) if xs in _WEIGHTS}
    missing = [xs for xs in dict.fromkeys(sets) if xs not in found]
    numerators, denominators = [], []
    for xs in missing:
        for i, xi in enumerate(xs):
            numerator, denominator = 1, 1
            for j, xj in enumerate(xs):
                if j != i:  # xs are 16-bit: exact products of a few hundred bits, reduced once below
                    numerator *= xj
                    denominator *= xj - xi
            numerators.append(numerator % P)
            denominators.append(denominator % P)
    products = iter(zip(numerators, _inverses(denominators), strict=True))
    for xs in missing:
        found[xs] = tuple(n * inverse % P for n, inverse in itertools.islice(products, len(xs)))
    if len(_WEIGHTS) + len(missing) > MAX_CACHED:
        _WEIGHTS.clear()
    _WEIGHTS.update((xs, found[xs]) for xs in missing)
    return [found[xs] for xs in sets]


def _inverses(values: Sequence[int]) -> list[int]:
    """Every value's inverse mod p with one modular inversion (Montgomery's trick): the coordinator
    rebuilds a secret per client, and an inversion in this field costs as much as dozens of products."""
    prefix = [1]
    for value in values:
        prefix.append(prefix[-1] * value % P)
    inverse, out = pow(prefix[-1], -1, P), [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inverse * prefix[i] % P  # (v_0 … v_{i−1}) / (v_0 … v_i) = 1 / v_i
        inverse = inverse * values[i] % P
    return out


def combine(shares: Sequence[Share], threshold: int) -> bytes:
    """The secret from the first ``threshold`` shares; refuses fewer shares or a repeated x."""
    return combine_many([shares], threshold)[0]


def combine_many(sharings: Sequence[Sequence[Share]], threshold: int) -> list[bytes]:
    """``combine`` of each sharing, their Lagrange weights computed together (one inversion)."""
    _check_threshold(threshold)
    used = [_first(shares, threshold) for shares in sharings]
    weights = lagrange_weights([tuple(share.x for share in shares) for shares in used])
    return [_secret(shares, w) for shares, w in zip(used, weights, strict=True)]


def _first(shares: Sequence[Share], threshold: int) -> Sequence[Share]:
    for share in shares:
        if not isinstance(share, Share):
            raise TypeError(f"expected Share objects, got {type(share).__name__}")
    if len(shares) < threshold:
        raise NotEnoughShares(f"need at least threshold={threshold} shares, got {len(shares)}")
    xs = [share.x for share in shares]
    if len(set(xs)) != len(xs):
        raise DuplicateShare(f"each share needs its own x, got {sorted(xs)}")
    return shares[:threshold]


def _secret(used: Sequence[Share], weights: tuple[int, ...]) -> bytes:
    secret = sum(w * share.y for w, share in zip(weights, used, strict=True)) % P
    if secret >= 1 << (8 * SECRET_SIZE):
        raise ReconstructionError("the shares do not belong to one 32-byte secret (inconsistent or corrupt shares)")
    return secret.to_bytes(SECRET_SIZE, "big")
