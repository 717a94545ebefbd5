from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedge.shared.data import DatasetUnavailable, Splits
from fedge.shared.data.fashion_mnist import load_fashion_mnist, stratified_sample

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
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A Fashion-MNIST folder: 30 train images (3 per class), 10 test images; image i is all i."""
    for prefix, per_class in (("train", 3), ("t10k", 1)):
        labels = np.repeat(np.arange(10), per_class)
        images = np.broadcast_to(np.arange(len(labels))[:, None, None], (len(labels), 28, 28))
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_fashion_mnist_has_60000_train_and_10000_heldout_images(fashion: Splits) -> None:
    assert fashion.train.x.shape == (60000, 28, 28, 1)
    assert fashion.heldout.x.shape == (10000, 28, 28, 1)
    assert fashion.train.x.dtype == np.float32
    assert fashion.train.labels == LABELS
    assert fashion.train.groups is None


def test_fashion_mnist_classes_are_balanced_6000_train_and_1000_heldout(fashion: Splits) -> None:
    assert np.bincount(fashion.train.y).tolist() == [6000] * 10
    assert np.bincount(fashion.heldout.y).tolist() == [1000] * 10


def test_fashion_mnist_pixels_are_scaled_to_the_unit_range(fashion: Splits) -> None:
    assert (fashion.train.x.min(), fashion.train.x.max()) == (0.0, 1.0)
    assert fashion.normalisation == {
        "method": "scale",
        "channels": ["grey"],
        "mean": [0.0],
        "std": [255.0],
    }


def test_stratified_sample_keeps_every_class_share(fashion: Splits) -> None:
    chosen = stratified_sample(fashion.train.y, 105, np.random.default_rng(0))

    assert len(np.unique(chosen)) == 105
    assert sorted(np.bincount(fashion.train.y[chosen]).tolist()) == [10] * 5 + [11] * 5


def test_limit_takes_the_same_subset_for_the_same_seed(tiny: Path) -> None:
    first, again = (load_fashion_mnist(limit=10, seed=1, folder=tiny) for _ in range(2))
    other = load_fashion_mnist(limit=10, seed=2, folder=tiny)

    assert np.bincount(first.train.y).tolist() == [1] * 10
    np.testing.assert_array_equal(first.train.x, again.train.x)
    assert not np.array_equal(first.train.x, other.train.x)
    assert len(first.heldout) == 10  # the held-out set is never limited


def test_folder_comes_from_the_environment_variable(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDGE_FASHION_MNIST_DIR", str(tiny))

    splits = load_fashion_mnist()

    assert (len(splits.train), len(splits.heldout)) == (30, 10)
    assert splits.train.x[3, 0, 0, 0] == pytest.approx(3 / 255)
    assert splits.train.y[3] == 1


def test_missing_fashion_mnist_names_the_apt_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDGE_FASHION_MNIST_DIR", str(tmp_path))

    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist") as error:
        load_fashion_mnist()
    assert f"not found in {tmp_path}" in str(error.value)


def test_truncated_gzip_file_is_a_clear_error(tiny: Path) -> None:
    path = tiny / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:-20])

    with pytest.raises(ValueError, match=f"{TRAIN_IMAGES}: expected a gzip file"):
        load_fashion_mnist(folder=tiny)


def test_idx_file_shorter_than_its_header_says_is_a_clear_error(tiny: Path) -> None:
    write_idx(tiny / TRAIN_IMAGES, np.zeros((30, 28, 28)))
    with gzip.open(tiny / TRAIN_IMAGES, "rb") as file:
        data = file.read()
    with gzip.open(tiny / TRAIN_IMAGES, "wb") as file:
        file.write(data[:-784])

    with pytest.raises(ValueError, match=r"expected 23520 bytes .* got 22736 \(truncated or corrupt"):
        load_fashion_mnist(folder=tiny)


def test_idx_file_with_a_wrong_magic_number_is_a_clear_error(tiny: Path) -> None:
    with gzip.open(tiny / TRAIN_IMAGES, "wb") as file:
        file.write(b"\x1f\x8b not an idx file")

    with pytest.raises(ValueError, match="expected IDX magic 00000803, got 1f8b206e"):
        load_fashion_mnist(folder=tiny)


def test_images_without_matching_labels_are_rejected(tiny: Path) -> None:
    write_idx(tiny / "train-labels-idx1-ubyte.gz", np.zeros(29))

    with pytest.raises(ValueError, match="one label each, got images \\(30, 28, 28\\) and 29"):
        load_fashion_mnist(folder=tiny)


def test_missing_dataset_skips_unless_datasets_are_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_or_skip: Callable[..., Any]
) -> None:
    monkeypatch.setenv("FEDGE_FASHION_MNIST_DIR", str(tmp_path))
    monkeypatch.delenv("FEDGE_REQUIRE_DATASETS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        load_or_skip(load_fashion_mnist)

    monkeypatch.setenv("FEDGE_REQUIRE_DATASETS", "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install"):
        load_or_skip(load_fashion_mnist)
