"""Per-channel input normalisation, written down so that a published model can repeat it.

Every dataset here is normalised the same way, ``(raw - mean) / std`` on the last (channel)
axis. The description is a JSON-ready dict that travels in `Splits.normalisation` and later
in a model's manifest, so a device can prepare its own raw readings identically::

    {"method": "standardise" | "scale", "channels": [...], "mean": [...], "std": [...]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def standardisation(x: np.ndarray, channels: Sequence[str]) -> dict[str, Any]:
    """Mean and std per channel of `x`; call it on training data only, so the held-out
    data stays unseen."""
    _check_channels(x, len(channels))
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    std = flat.std(axis=0)
    std[std == 0] = 1.0  # a constant channel is left centred rather than divided by zero
    return _describe("standardise", channels, flat.mean(axis=0), std)


def scaling(scale: float, channels: Sequence[str]) -> dict[str, Any]:
    """A fixed scale (e.g. 255 for 8-bit pixels), in the same mean/std form."""
    zeros, scales = np.zeros(len(channels)), np.full(len(channels), float(scale))
    return _describe("scale", channels, zeros, scales)


def normalise(x: np.ndarray, normalisation: Mapping[str, Any]) -> np.ndarray:
    """Apply a description to raw samples, as float32 (the engine's and ONNX's dtype)."""
    mean = np.asarray(normalisation["mean"], np.float32)
    std = np.asarray(normalisation["std"], np.float32)
    _check_channels(x, len(mean))
    return (x.astype(np.float32) - mean) / std


def _describe(method: str, channels: Sequence[str], mean: np.ndarray, std: np.ndarray) -> dict[str, Any]:
    return {
        "method": method,
        "channels": list(channels),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
    }


def _check_channels(x: np.ndarray, channels: int) -> None:
    if x.shape[-1] != channels:
        raise ValueError(f"expected {channels} channels on the last axis, got {x.shape[-1]}")
