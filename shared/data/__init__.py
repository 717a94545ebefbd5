"""Datasets and client partitioners for simulations, tests and benchmarks.

The public API::

    load(name, **options) -> Splits          one of DATASETS, options go to its loader
    partition(dataset, scheme, clients, seed) -> list of sorted int64 index arrays
    normalise(raw, splits.normalisation)     prepare raw samples as the loader did

    Dataset              x (N, ..., C) float32 channels-last, y int64, labels, groups
    Splits               train, heldout (no client trains on it), normalisation
    DatasetUnavailable   files or package missing; the message says what to install

Datasets::

    "watch"          real smartwatch IMU: 10 subjects, 7 exercises, 6 channels at 50 Hz
                     (PyPI seglearn: `pip install 'fedge[sim]'`)
    "fashion-mnist"  real 28×28 greyscale images, 10 classes, no subjects
                     (Debian: `apt-get install dataset-fashion-mnist`)
    "synthetic-imu"  generated IMU windows, small and fast, for tests

Each loader lives in the module named after its dataset (`watch.load_watch`,
`fashion_mnist.load_fashion_mnist`, `synthetic.synthetic_imu`) and documents its options.

Partition schemes: "iid", "dirichlet:<alpha>" (label skew), "natural" (one client per
subject); see `partition`. Loading is lazy: nothing is read until `load` is called.

`folder` holds the data-folder format (docs/client-data.md): what a device trains on and what
`fedge data split` writes, client folders and heldout/. `load` takes such a folder, or a split's
output, as a dataset of your own (`local`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .dataset import Dataset, DatasetUnavailable, Splits
from .fashion_mnist import load_fashion_mnist
from .local import load_local
from .normalisation import normalise
from .partition import partition
from .synthetic import synthetic_imu
from .watch import load_watch

LOADERS: dict[str, Callable[..., Splits]] = {
    "watch": load_watch,
    "fashion-mnist": load_fashion_mnist,
    "synthetic-imu": synthetic_imu,
}
DATASETS = tuple(LOADERS)

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetUnavailable",
    "Splits",
    "load",
    "normalise",
    "partition",
]


def load(name: str, **options: Any) -> Splits:
    """The named dataset's splits, or a folder's of your own (`local.load_local`: a data folder,
    or `fedge data split`'s output); `options` are its loader's keyword arguments."""
    if name in LOADERS:
        return LOADERS[name](**options)
    if Path(name).is_dir():
        return load_local(name, **options)
    raise ValueError(f"expected a dataset among {', '.join(DATASETS)}, or a data folder, got {name!r}")
