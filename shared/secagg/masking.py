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
on the order, so the result is the same bytes. A client's update comes as a ``Deferred``
quantisation, and each thread quantises a segment just before it masks it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from fedge.shared.secagg.prg import SEGMENT, Expander, check_seed, scratch
from fedge.shared.secagg.quantize import Deferred

Fill = Callable[[int, np.ndarray], None]

WORKERS = min(8, os.cpu_count() or 1)
MIN_WORK = 1 << 22  # values × masks a thread should have at least, for the hand-off to pay
_helpers: ThreadPoolExecutor | None = None  # made once: a thread start costs ~1 ms on a busy machine
_making = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _helpers
    with _making:
        if _helpers is None:
            _helpers = ThreadPoolExecutor(max(1, WORKERS - 1), thread_name_prefix="fedge-masking")
        return _helpers


def _forget_pool() -> None:
    global _helpers, _making
    _helpers, _making = None, threading.Lock()  # a forked child has the pool object, not its threads


os.register_at_fork(after_in_child=_forget_pool)


def sign(own: int, peer: int) -> int:
    if own == peer:
        raise ValueError(f"a pairwise mask needs two different clients, got {own} twice")
    return 1 if own < peer else -1


def _check_values(values: object, what: str) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.dtype != np.uint32 or values.ndim != 1:
        got = f"{values.dtype} {values.shape}" if isinstance(values, np.ndarray) else type(values).__name__
        raise TypeError(f"{what} must be a 1-D uint32 array, got {got}")
    return values


def _apply(
    out: np.ndarray, seeds_with_signs: Iterable[tuple[bytes, int]], *, remove: bool = False, fill: Fill | None = None
) -> np.ndarray:
    """``out`` plus (minus, with ``remove``) every signed mask, in place; with ``fill``, each
    segment is first filled by ``fill(start, segment)``, in the thread that masks it."""
    masks = list(seeds_with_signs)
    for seed, direction in masks:  # refused here, before any thread writes
        check_seed(seed)
        if direction not in (1, -1) or isinstance(direction, bool):
            raise ValueError(f"a pairwise mask's sign must be +1 or -1, got {direction!r}")
    signed = [(seed, direction if not remove else -direction) for seed, direction in masks]
    segments = -(-out.size // SEGMENT)
    workers = max(1, min(WORKERS, segments, len(signed) * out.size // MIN_WORK))
    bounds = [segments * w // workers for w in range(workers + 1)]
    helped = [_pool().submit(_add_range, out, signed, bounds[w], bounds[w + 1], fill) for w in range(1, workers)]
    try:
        _add_range(out, signed, 0, bounds[1], fill)  # this thread takes the first part
    finally:
        wait(helped)  # no helper writes into ``out`` once this returns or raises
    for part in helped:
        part.result()
    return out


def _add_range(out: np.ndarray, masks: list[tuple[bytes, int]], first: int, stop: int, fill: Fill | None) -> None:
    """Adds each sign·PRG(seed) to ``out``'s segments ``first`` … ``stop − 1``."""
    expanders, buffer = [(Expander(seed), direction) for seed, direction in masks], scratch()
    for segment in range(first, stop):
        part = out[segment * SEGMENT : (segment + 1) * SEGMENT]
        if fill is not None:
            fill(segment * SEGMENT, part)
        for expander, direction in expanders:
            mask = expander.segment(segment, part.size, buffer)
            if direction == 1:
                np.add(part, mask, out=part)
            else:
                np.subtract(part, mask, out=part)


def mask(values: np.ndarray | Deferred, self_seed: bytes, pair_seeds: Sequence[tuple[bytes, int]]) -> np.ndarray:
    """The masked input: quantised ``values`` plus the self mask plus every signed pairwise mask.

    A ``Deferred`` update is quantised segment by segment by the threads that mask it, while each
    segment is in cache: no pass over the whole update before masking, and the cores share it.
    """
    masks = [(self_seed, 1), *pair_seeds]
    if isinstance(values, Deferred):
        return _apply(np.empty(values.size, np.uint32), masks, fill=values.fill)
    return _apply(_check_values(values, "values").copy(), masks)


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
