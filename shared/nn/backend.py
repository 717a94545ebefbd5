"""The array-module switch: the engine runs on NumPy, or on CuPy when arrays live on a GPU.

Every op asks ``get_array_module(x)`` instead of importing numpy directly, so moving a model's
parameters and inputs to the GPU (``to_device``) is all it takes to train there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # CuPy is optional: devices and CI run on NumPy.
    import cupy  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the machine
    cupy = None

Array = Any  # numpy.ndarray or cupy.ndarray


def get_array_module(x: Any) -> Any:
    """numpy or cupy, whichever holds the raw array ``x``."""
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np


def gpu_available() -> bool:
    return cupy is not None and cupy.cuda.runtime.getDeviceCount() > 0


def to_device(x: Array, device: str) -> Array:
    """Copy an array to ``"cpu"`` or ``"gpu"``."""
    if device == "cpu":
        return cupy.asnumpy(x) if cupy is not None and isinstance(x, cupy.ndarray) else x
    if device == "gpu":
        if cupy is None:
            raise RuntimeError("device 'gpu' needs CuPy: pip install cupy-cuda12x")
        return cupy.asarray(x)
    raise ValueError(f"expected device 'cpu' or 'gpu', got {device!r}")
