"""The containers every loader returns: a `Dataset` of samples and the `Splits` of one load.

Samples are channels-last — (N, W, C) sensor windows, (N, H, W, C) images — the layout of the
`nn` engine, the JS trainer and the exported ONNX inputs, so nothing is transposed on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DatasetUnavailable(RuntimeError):
    """A dataset's files or package are not installed; the message says how to get them."""


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Samples kept channels-last, the layout both trainers and ONNX use.

    `groups` holds a natural client id per sample (the subject who recorded it), so a
    simulation can split clients the way real devices would; None when the data has none.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_samples(self.x)
        _check_vector("y", self.y, len(self.x))
        _check_labels(self.y, self.labels)
        if self.groups is not None:
            _check_vector("groups", self.groups, len(self.x))

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        groups = "none" if self.groups is None else len(np.unique(self.groups))
        return (
            f"Dataset({self.name!r}, n={len(self)}, sample_shape={self.sample_shape}, "
            f"classes={self.num_classes}, groups={groups})"
        )

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, index: np.ndarray) -> Dataset:
        """The samples at `index` (a client's share), as a new Dataset with the same labels."""
        index = np.asarray(index)
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"expected a 1-D integer index, got {index.dtype} {index.shape}")
        groups = None if self.groups is None else self.groups[index]
        return Dataset(self.name, self.x[index], self.y[index], self.labels, groups)


@dataclass(frozen=True, eq=False)
class Splits:
    """One load: the data clients train on, the held-out data no client sees, and how inputs
    were normalised (``(raw - mean) / std`` per channel) so a published model can state it."""

    train: Dataset
    heldout: Dataset
    normalisation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.heldout.labels != self.train.labels:
            raise ValueError(f"expected heldout labels {self.train.labels}, got {self.heldout.labels}")
        if self.heldout.sample_shape != self.train.sample_shape:
            raise ValueError(
                f"expected heldout samples of shape {self.train.sample_shape}, got {self.heldout.sample_shape}"
            )


def _check_samples(x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise ValueError(f"expected x float32, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 2:
        raise ValueError(f"expected x of shape (N, ..., C), got {x.shape}")


def _check_vector(name: str, values: np.ndarray, n: int) -> None:
    if not isinstance(values, np.ndarray) or values.dtype != np.int64:
        got = getattr(values, "dtype", type(values).__name__)
        raise ValueError(f"expected {name} int64, got {got}")
    if values.shape != (n,):
        raise ValueError(f"expected {name} of shape ({n},), got {values.shape}")


def _check_labels(y: np.ndarray, labels: tuple[str, ...]) -> None:
    if not isinstance(labels, tuple) or not labels:
        raise ValueError(f"expected labels as a non-empty tuple of names, got {labels!r}")
    if len(y) and (y.min() < 0 or y.max() >= len(labels)):
        raise ValueError(f"expected class ids in [0, {len(labels)}), got [{y.min()}, {y.max()}]")
