"""Fashion-MNIST (Zalando, MIT) from Debian's `dataset-fashion-mnist` package.

The official 60k training images are the clients' data; the official 10k test set is the
held-out split. Images become (N, 28, 28, 1) float32 in [0, 1]. The folder is
/usr/share/datasets/fashion-mnist unless `folder` or $FEDGE_FASHION_MNIST_DIR says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, DatasetUnavailable, Splits
from .idx import read_idx
from .normalisation import normalise, scaling

NAME = "fashion-mnist"
DEFAULT_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FOLDER_VARIABLE = "FEDGE_FASHION_MNIST_DIR"
LABELS = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "heldout": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def load_fashion_mnist(limit: int | None = None, seed: int = 0, folder: str | Path | None = None) -> Splits:
    """Train and held-out splits; `limit` keeps a class-stratified random subset of the
    training images, for fast runs."""
    root = find_folder(folder)
    stats = scaling(255.0, ["grey"])
    train, heldout = (_read_split(root, FILES[part], stats) for part in ("train", "heldout"))
    if limit is not None:
        train = train.subset(stratified_sample(train.y, limit, np.random.default_rng(seed)))
    return Splits(train, heldout, stats)


def find_folder(folder: str | Path | None = None) -> Path:
    """The folder holding all four files; missing ones raise with the apt command."""
    root = Path(folder or os.environ.get(FOLDER_VARIABLE) or DEFAULT_FOLDER)
    missing = [name for pair in FILES.values() for name in pair if not (root / name).is_file()]
    if missing:
        raise DatasetUnavailable(
            f"Fashion-MNIST not found in {root} (missing {', '.join(missing)}): install it "
            f"with `apt-get install dataset-fashion-mnist` (or set {FOLDER_VARIABLE})"
        )
    return root


def stratified_sample(y: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `limit` samples, taken round-robin over classes in random order, so
    every class keeps (nearly) its share."""
    if limit < 1:
        raise ValueError(f"expected limit >= 1, got {limit}")
    order = rng.permutation(len(y))
    rank = np.empty(len(y), np.int64)  # position of each shuffled sample within its class
    for label in np.unique(y):
        members = order[y[order] == label]
        rank[members] = np.arange(len(members))
    chosen = np.lexsort((rng.random(len(y)), rank))[:limit]
    return np.sort(chosen)


def _read_split(root: Path, files: tuple[str, str], stats: dict[str, Any]) -> Dataset:
    images, labels = read_idx(root / files[0], ndim=3), read_idx(root / files[1], ndim=1)
    if len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{root}: expected 28×28 images with one label each, got images {images.shape} and {len(labels)} labels"
        )
    x = normalise(images[..., np.newaxis], stats)
    return Dataset(NAME, x, labels.astype(np.int64), LABELS)
