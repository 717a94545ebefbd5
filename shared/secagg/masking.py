"""Masks, all mod 2^32 (numpy uint32 wraps around):

    client i sends  y_i = q_i + PRG(b_i) + Σ_{j neighbour of i} sign(i, j)·PRG(s_ij)
    sign(i, j)      = +1 if i < j else −1, so the two ends of a pair cancel in the sum
    server          Σ y_i over survivors − Σ PRG(b_i) over survivors
                    − Σ sign(j, d)·PRG(s_jd) for each dropped d and each surviving neighbour j of d

PRG is ``prg.expand``; s_ij is ``kdf.pairwise_seed`` of the pair's X25519 secret.

Masks are added one PRG segment of the output at a time (SEGMENT values: the slice and one
keystream segment stay in cache while every mask passes over them, instead of streaming each
whole mask through memory), and the segments are split among worker threads: AES in OpenSSL and
numpy's additions release the GIL, so the cores share the work. The sum mod 2^32 does not depend
on the order, so the result is the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fedge.shared.secagg.prg import SEGMENT, Expander

WORKERS = min(8, os.cpu_count() or 1)
MIN_WORK = 1 << 22  # values × masks a thread should have at least, for the hand-off to pay


def sign(own: int, peer: int) -> int:
    if own == peer:
        raise ValueError(f"a pairwise mask needs two different clients, got {own} twice")
    return 1 if own < peer else -1


def _check_values(values: object, what: str) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.dtype != np.uint32 or values.ndim != 1:
        got = f"{values.dtype} {values.shape}" if isinstance(values, np.ndarray) else type(values).__name__
        raise TypeError(f"{what} must be a 1-D uint32 array, got {got}")
    return values


def _apply(out: np.ndarray, seeds_with_signs: Iterable[tuple[bytes, int]], *, remove: bool = False) -> np.ndarray:
    """``out`` plus (minus, with ``remove``) every signed mask, in place."""
    masks = list(seeds_with_signs)
    for _, direction in masks:
        if direction not in (1, -1) or isinstance(direction, bool):
            raise ValueError(f"a pairwise mask's sign must be +1 or -1, got {direction!r}")
    signed = [(seed, direction if not remove else -direction) for seed, direction in masks]
    segments = -(-out.size // SEGMENT)
    workers = max(1, min(WORKERS, segments, len(signed) * out.size // MIN_WORK))
    bounds = [segments * w // workers for w in range(workers + 1)]
    if workers == 1:
        _add_range(out, signed, 0, segments)
        return out
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(_add_range, [out] * workers, [signed] * workers, bounds[:-1], bounds[1:]))
    return out


def _add_range(out: np.ndarray, masks: list[tuple[bytes, int]], first: int, stop: int) -> None:
    """Adds each sign·PRG(seed) to ``out``'s segments ``first`` … ``stop − 1``."""
    expanders = [(Expander(seed), direction) for seed, direction in masks]
    for segment in range(first, stop):
        part = out[segment * SEGMENT : (segment + 1) * SEGMENT]
        for expander, direction in expanders:
            mask = expander.segment(segment, part.size)
            if direction == 1:
                np.add(part, mask, out=part)
            else:
                np.subtract(part, mask, out=part)


def mask(values: np.ndarray, self_seed: bytes, pair_seeds: Sequence[tuple[bytes, int]]) -> np.ndarray:
    """The masked input: quantised ``values`` plus the self mask plus every signed pairwise mask."""
    out = _check_values(values, "values").copy()
    return _apply(out, [(self_seed, 1), *pair_seeds])


def remove_self_masks(total: np.ndarray, seeds: Iterable[bytes]) -> np.ndarray:
    """``total`` minus PRG(b) for every survivor's reconstructed self-mask seed b."""
    out = _check_values(total, "total").copy()
    return _apply(out, [(seed, 1) for seed in seeds], remove=True)


def remove_pair_masks(total: np.ndarray, seeds_with_signs: Iterable[tuple[bytes, int]]) -> np.ndarray:
    """``total`` minus the masks that survivors added for dropped neighbours.

    Each sign is the survivor's: +1 if the survivor's index is below the dropped client's.
    """
    out = _check_values(total, "total").copy()
    return _apply(out, seeds_with_signs, remove=True)
