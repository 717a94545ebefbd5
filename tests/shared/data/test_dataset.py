from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fedge.shared.data import DATASETS, Dataset, Splits, load, normalise

LABELS = ("still", "walk")


def make(n: int = 4, **fields: Any) -> Dataset:
    values = {
        "name": "toy",
        "x": np.arange(n * 3, dtype=np.float32).reshape(n, 3, 1),
        "y": np.array([0, 1] * (n // 2), np.int64),
        "labels": LABELS,
        "groups": np.arange(n, dtype=np.int64),
    }
    return Dataset(**(values | fields))


def test_subset_keeps_labels_and_the_groups_of_the_chosen_samples() -> None:
    part = make().subset(np.array([3, 1]))

    assert part.x[:, 0, 0].tolist() == [9.0, 3.0]
    assert part.y.tolist() == [1, 1]
    assert part.groups.tolist() == [3, 1]
    assert (len(part), part.num_classes, part.sample_shape) == (2, 2, (3, 1))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"x": np.zeros((4, 3, 1))}, "expected x float32, got float64"),
        ({"x": np.zeros(4, np.float32)}, r"expected x of shape \(N, ..., C\), got \(4,\)"),
        ({"y": np.zeros(4, np.int32)}, "expected y int64, got int32"),
        ({"y": np.zeros(3, np.int64)}, r"expected y of shape \(4,\), got \(3,\)"),
        ({"y": np.array([0, 1, 2, 0])}, r"expected class ids in \[0, 2\), got \[0, 2\]"),
        ({"groups": np.zeros(5, np.int64)}, r"expected groups of shape \(4,\), got \(5,\)"),
        ({"labels": ["still", "walk"]}, "expected labels as a non-empty tuple of names"),
    ],
)
def test_malformed_dataset_is_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**fields)


def test_subset_with_a_boolean_mask_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected a 1-D integer index, got bool"):
        make().subset(np.array([True, False, True, False]))


def test_splits_with_different_labels_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"expected heldout labels \('still', 'walk'\), got \('a', 'b'\)"):
        Splits(make(), make(labels=("a", "b")))


def test_normalise_applies_mean_and_std_per_channel() -> None:
    stats = {"mean": [1.0, 10.0], "std": [2.0, 5.0]}

    out = normalise(np.array([[3.0, 20.0]]), stats)

    assert out.dtype == np.float32
    assert out.tolist() == [[1.0, 2.0]]


def test_normalise_rejects_the_wrong_number_of_channels() -> None:
    with pytest.raises(ValueError, match="expected 2 channels on the last axis, got 3"):
        normalise(np.zeros((1, 3)), {"mean": [0.0, 0.0], "std": [1.0, 1.0]})


def test_load_unknown_name_lists_the_datasets() -> None:
    assert DATASETS == ("watch", "fashion-mnist", "synthetic-imu")
    with pytest.raises(
        ValueError, match="expected a dataset among watch, fashion-mnist, synthetic-imu, or a data folder, got 'mnist'"
    ):
        load("mnist")
