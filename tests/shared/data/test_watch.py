from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fedge.shared.data import DatasetUnavailable, Splits, partition
from fedge.shared.data import watch as watch_module
from fedge.shared.data.watch import load_watch, window_starts

EXERCISES = ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")


class Recordings:
    """Finds where standardised windows were cut from, by a lookup on their first reading."""

    def __init__(self, raw: dict[str, Any], normalisation: dict[str, Any]) -> None:
        self.series = raw["X"]
        self.mean, self.std = np.asarray(normalisation["mean"]), np.asarray(normalisation["std"])
        rows = np.concatenate(self.series)
        self.where = np.concatenate([[(r, offset) for offset in range(len(s))] for r, s in enumerate(self.series)])
        self.order = np.argsort(rows[:, 0])
        self.first = rows[self.order, 0]

    def locate(self, windows: np.ndarray) -> np.ndarray:
        """(recording, offset) of every window, each checked reading by reading."""
        originals = windows * self.std + self.mean
        lows = np.searchsorted(self.first, originals[:, 0, 0] - 1e-5)
        highs = np.searchsorted(self.first, originals[:, 0, 0] + 1e-5)
        return np.array([self._match(*args) for args in zip(originals, lows, highs, strict=True)])

    def _match(self, original: np.ndarray, low: int, high: int) -> tuple[int, int]:
        for recording, offset in self.where[self.order[low:high]]:
            found = self.series[recording][offset : offset + len(original)]
            if found.shape == original.shape and np.abs(found - original).max() < 1e-4:
                return recording, offset
        raise AssertionError("window not found in the raw recordings")


@pytest.fixture(scope="module")
def origins(watch: Splits, watch_recordings: dict[str, Any]) -> dict[str, np.ndarray]:
    """(recording, offset) of every train and held-out window."""
    recordings = Recordings(watch_recordings, watch.normalisation)
    return {
        "train": recordings.locate(watch.train.x),
        "heldout": recordings.locate(watch.heldout.x),
    }


def test_window_starts_stop_at_the_heldout_boundary() -> None:
    train, heldout = window_starts(1000, window=100, stride=50, heldout=0.2)

    assert train.tolist() == list(range(0, 701, 50))  # the last one ends at 800
    assert heldout.tolist() == [800, 850, 900]


def test_watch_windows_are_two_seconds_of_six_channels_with_seven_exercises(watch: Splits) -> None:
    assert watch.train.sample_shape == (100, 6)
    assert watch.train.x.dtype == np.float32
    assert watch.train.labels == EXERCISES
    assert watch.normalisation["channels"] == ["ax", "ay", "az", "wx", "wy", "wz"]


def test_watch_has_4463_windows_from_ten_subjects(watch: Splits) -> None:
    # 4677 windows without a split; each of the 140 cuts at the boundary costs ~1.5 windows
    assert (len(watch.train), len(watch.heldout)) == (3693, 770)
    assert np.unique(watch.train.groups).tolist() == list(range(10))
    assert np.unique(watch.heldout.groups).tolist() == list(range(10))


def test_every_window_keeps_its_subject_and_exercise(
    watch: Splits, watch_recordings: dict[str, Any], origins: dict[str, np.ndarray]
) -> None:
    for part, name in ((watch.train, "train"), (watch.heldout, "heldout")):
        recording = origins[name][:, 0]

        assert (part.groups == watch_recordings["subject"][recording] - 1).all()
        assert (part.y == watch_recordings["y"][recording]).all()


def test_heldout_windows_never_overlap_training_windows(
    watch_recordings: dict[str, Any], origins: dict[str, np.ndarray]
) -> None:
    lengths = np.array([len(series) for series in watch_recordings["X"]])
    boundaries = lengths - np.round(lengths * 0.2)
    train, heldout = origins["train"], origins["heldout"]

    assert (train[:, 1] + 100 <= boundaries[train[:, 0]]).all()
    assert (heldout[:, 1] >= boundaries[heldout[:, 0]]).all()


def test_normalisation_uses_training_statistics_only(watch: Splits) -> None:
    train_mean, train_std = (
        watch.train.x.mean(axis=(0, 1), dtype=np.float64),
        watch.train.x.std(axis=(0, 1), dtype=np.float64),
    )
    heldout_mean = watch.heldout.x.mean(axis=(0, 1))

    np.testing.assert_allclose(train_mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(train_std, 1.0, atol=1e-4)
    assert np.abs(heldout_mean).max() > 0.01  # would be ~0 had held-out data been in the stats


def test_natural_partition_of_watch_gives_one_client_per_subject(watch: Splits) -> None:
    clients = partition(watch.train, "natural", clients=None, seed=0)

    assert len(clients) == 10
    assert [len(c) for c in clients] == np.bincount(watch.train.groups).tolist()


def test_missing_seglearn_tells_to_install_the_sim_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "find_spec", lambda name: None)

    with pytest.raises(DatasetUnavailable, match=r"pip install 'fedge\[sim\]'"):
        load_watch()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"heldout": 1.0}, r"expected heldout in \(0, 1\), got 1.0"),
        ({"window": 0}, "expected window and stride >= 1, got 0 and 50"),
    ],
)
def test_impossible_window_options_are_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_watch(**options)


def test_window_longer_than_every_recording_is_rejected(watch_recordings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="expected recordings longer than a window of 3000"):
        load_watch(window=3000)
