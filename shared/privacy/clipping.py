"""Per-update L2 clipping: bounds one client's influence on the sum, the sensitivity DP noise is sized for.

The norm is global, over every tensor of the update together, so the bound holds for the
update as a whole (client-level DP), not layer by layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def clip_update(delta: Sequence[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float]:
    """The update scaled down to L2 norm `max_norm` when it is longer (a copy either way), and its original norm.

    The norm is summed in float64; the result keeps each tensor's dtype, so a float32 update
    clipped to C has norm C up to float32 rounding (a relative 1e-7).
    """
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"expected a finite max_norm > 0, got {max_norm}")
    tensors = [_checked(i, t) for i, t in enumerate(delta)]
    wide = [t.astype(np.float64).ravel() for t in tensors]
    with np.errstate(over="ignore"):  # an overflowing norm is refused just below
        norm = math.sqrt(sum(float(np.dot(w, w)) for w in wide))
    if not math.isfinite(norm):
        raise ValueError(f"expected an update whose norm fits float64, got {norm}")
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return [(w * scale).astype(t.dtype).reshape(t.shape) for t, w in zip(tensors, wide, strict=True)], norm


def _checked(index: int, tensor: np.ndarray) -> np.ndarray:
    tensor = np.asarray(tensor)
    if not np.issubdtype(tensor.dtype, np.floating):
        raise TypeError(f"expected floating-point tensors, got {tensor.dtype} for tensor {index}")
    if not np.all(np.isfinite(tensor)):
        raise ValueError(f"expected finite values, got NaN or inf in tensor {index}")
    return tensor


def quantised_sensitivity(max_norm: float, scale: float, dim: int) -> float:
    """The L2 sensitivity, in integer units, of one client's update clipped to `max_norm`, scaled and rounded.

    Its neighbour is the same client with no data, whose update is zero (zero-out, the relation
    under which distributed DP holds against a server that sees who took part). Both are
    rounded, each of the `dim` coordinates moving by less than one unit, so the two quantised
    vectors lie less than max_norm·scale + 2√dim apart; clamping coordinates into a range that
    holds 0 only brings them closer. Distributed DP noise is z times this.
    """
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"expected a finite max_norm > 0, got {max_norm}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"expected a finite scale > 0, got {scale}")
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"expected a whole number of coordinates ≥ 1, got {dim!r}")
    return max_norm * scale + 2 * math.sqrt(dim)
