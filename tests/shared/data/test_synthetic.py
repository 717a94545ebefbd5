from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fedge.shared.data import Dataset, load
from fedge.shared.data.synthetic import synthetic_imu


def spectrum(dataset: Dataset) -> np.ndarray:
    """Magnitude spectrum per channel, flattened: the feature a class frequency shows in."""
    return np.abs(np.fft.rfft(dataset.x, axis=1)).reshape(len(dataset), -1)


def test_default_set_has_480_windows_balanced_over_4_subjects_and_4_classes() -> None:
    splits = synthetic_imu()

    assert (len(splits.train), len(splits.heldout)) == (384, 96)  # 4 × 4 × 30, a fifth held out
    assert splits.train.sample_shape == (50, 6)
    assert np.bincount(splits.train.y).tolist() == [96] * 4
    assert np.bincount(splits.heldout.groups).tolist() == [24] * 4
    assert splits.train.labels == ("motion-0", "motion-1", "motion-2", "motion-3")


def test_same_seed_gives_identical_data_and_another_seed_does_not() -> None:
    first, again, other = synthetic_imu(seed=7), synthetic_imu(seed=7), synthetic_imu(seed=8)

    np.testing.assert_array_equal(first.train.x, again.train.x)
    np.testing.assert_array_equal(first.heldout.y, again.heldout.y)
    assert not np.allclose(first.train.x, other.train.x)


def test_classes_are_told_apart_by_their_frequencies() -> None:
    splits = synthetic_imu(seed=1)
    centroids = np.stack([spectrum(splits.train)[splits.train.y == k].mean(0) for k in range(4)])

    distances = ((spectrum(splits.heldout)[:, None, :] - centroids) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == splits.heldout.y).mean()

    assert accuracy > 0.9


def test_subjects_shift_the_signal_so_natural_clients_are_non_iid() -> None:
    train = synthetic_imu(subjects=6, seed=2).train

    per_subject_mean = np.stack([train.x[train.groups == s].mean(axis=(0, 1)) for s in range(6)])

    assert per_subject_mean.std(axis=0).mean() > 0.2  # in units of the overall channel std


def test_training_windows_are_standardised_and_heldout_ones_use_their_statistics() -> None:
    splits = synthetic_imu(seed=3)

    np.testing.assert_allclose(splits.train.x.mean(axis=(0, 1), dtype=np.float64), 0.0, atol=1e-5)
    np.testing.assert_allclose(splits.train.x.std(axis=(0, 1), dtype=np.float64), 1.0, atol=1e-4)
    assert np.abs(splits.heldout.x.mean(axis=(0, 1))).max() > 1e-3


def test_load_by_name_passes_options_to_the_generator() -> None:
    splits = load("synthetic-imu", subjects=2, classes=3, windows_per_class=10)

    assert (len(splits.train), len(splits.heldout)) == (48, 12)
    assert splits.train.num_classes == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"windows_per_class": 2}, "leave windows on both sides, got 2 × 0.2"),
        ({"heldout": 0.0}, r"expected heldout in \(0, 1\), got 0.0"),
        ({"classes": 10, "window": 20}, "expected window > 30.45 samples to resolve 10 classes, got 20"),
        ({"subjects": 0}, "expected subjects >= 1, channels >= 1, classes >= 2, got 0, 6, 4"),
    ],
)
def test_options_that_cannot_make_a_dataset_are_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic_imu(**options)
