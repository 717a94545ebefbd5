"""The shoulder-exercise smartwatch IMU set (Burns et al. 2018), bundled in PyPI `seglearn`.

140 recordings (10 subjects × 7 exercises × 2 sides) of 6 channels (ax ay az wx wy wz) at
50 Hz. Each recording is cut in time::

    |---- train windows start at 0, stride, 2·stride … ----|---- held-out windows ----|
                                                          ^ boundary = len − round(len × heldout)

No window straddles the boundary, so no sample is in both the train and the held-out split.
Windows keep their subject as `groups` (0-based) for natural per-subject clients.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, DatasetUnavailable, Splits
from .normalisation import normalise, standardisation

NAME = "watch"
FILE = "watch_dataset.npy"

Windows = tuple[np.ndarray, np.ndarray, np.ndarray]  # raw x, class ids, 0-based subjects


def load_watch(window: int = 100, stride: int = 50, heldout: float = 0.2) -> Splits:
    """Windows of `window` samples (100 = 2 s), the last `heldout` of each recording held
    out, standardised with training statistics only."""
    _check_options(window, stride, heldout)
    raw = read_recordings()
    labels = tuple(str(name) for name in raw["y_labels"])
    channels = [str(name) for name in raw["X_labels"]]
    train, held = _cut(raw, window, stride, heldout)
    stats = standardisation(train[0], channels)
    return Splits(_dataset(train, stats, labels), _dataset(held, stats, labels), stats)


def window_starts(length: int, window: int, stride: int, heldout: float) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of the train and the held-out windows of one recording; every train
    window ends at or before the boundary and every held-out window starts at or after it."""
    boundary = length - round(length * heldout)
    train = np.arange(0, boundary - window + 1, stride, dtype=np.int64)
    held = np.arange(boundary, length - window + 1, stride, dtype=np.int64)
    return train, held


def read_recordings() -> dict[str, Any]:
    """The raw pickled dict from seglearn's package folder; importing seglearn itself would
    pull in pandas, which it needs but does not declare."""
    spec = find_spec("seglearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(
            "the smartwatch dataset ships in the PyPI package seglearn, which is not "
            "installed: install it with `pip install 'fedge[sim]'`"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / FILE
    if not path.is_file():
        raise DatasetUnavailable(
            f"seglearn is installed but {path} is missing: reinstall it with "
            "`pip install --force-reinstall 'fedge[sim]'`"
        )
    return np.load(path, allow_pickle=True).item()


def _check_options(window: int, stride: int, heldout: float) -> None:
    if window < 1 or stride < 1:
        raise ValueError(f"expected window and stride >= 1, got {window} and {stride}")
    if not 0.0 < heldout < 1.0:
        raise ValueError(f"expected heldout in (0, 1), got {heldout}")


def _cut(raw: dict[str, Any], window: int, stride: int, heldout: float) -> tuple[Windows, Windows]:
    """Every recording's train and held-out windows, each with its label and subject."""
    train, held = [], []
    for series, label, subject in zip(raw["X"], raw["y"], raw["subject"], strict=True):
        train_starts, held_starts = window_starts(len(series), window, stride, heldout)
        train.append(_windows(series, train_starts, window, label, subject - 1))
        held.append(_windows(series, held_starts, window, label, subject - 1))
    return _concatenate(train, window), _concatenate(held, window)


def _windows(series: np.ndarray, starts: np.ndarray, window: int, label: int, group: int) -> Windows:
    ids = np.ones(len(starts), np.int64)
    return series[starts[:, None] + np.arange(window)], ids * int(label), ids * int(group)


def _concatenate(parts: list[Windows], window: int) -> Windows:
    x, y, groups = (np.concatenate(column) for column in zip(*parts, strict=True))
    if not len(y):
        raise ValueError(f"expected recordings longer than a window of {window} samples")
    return x, y, groups


def _dataset(windows: Windows, stats: dict[str, Any], labels: tuple[str, ...]) -> Dataset:
    x, y, groups = windows
    return Dataset(NAME, normalise(x, stats), y, labels, groups)
