"""Samples of one's own as a dataset: a data folder, or what `fedge data split` wrote."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.shared import data
from fedge.shared.data.folder import LocalDataError, write_local_data
from fedge.shared.data.local import load_local, local_layout

LABELS = ("sit", "walk", "run")
NORMALISATION = {"method": "standardise", "channels": ["ax", "ay"], "mean": [0.0, 1.0], "std": [1.0, 2.0]}


def write(folder, n: int, start: int = 0, labels=LABELS, client=None):
    x = np.arange(start, start + n, dtype=np.float32)[:, None, None] * np.ones((1, 4, 2), np.float32)
    y = np.arange(n, dtype=np.int64) % len(labels)
    write_local_data(folder, x, y, labels, dataset="mine", normalisation=NORMALISATION, client=client)


def test_a_split_is_one_natural_client_per_folder_and_its_heldout(tmp_path):
    for index, (n, start) in enumerate([(5, 0), (3, 100), (4, 200)]):
        write(tmp_path / f"client-{index:03d}", n, start, client=index)
    write(tmp_path / "heldout", 6, 900)
    splits = data.load(str(tmp_path))
    assert splits.train.groups.tolist() == [0] * 5 + [1] * 3 + [2] * 4
    assert splits.train.x[:, 0, 0].tolist() == [*range(5), *range(100, 103), *range(200, 204)]
    assert splits.heldout.x[:, 0, 0].tolist() == list(range(900, 906)) and splits.heldout.groups is None
    assert (splits.train.labels, splits.train.sample_shape, splits.normalisation) == (LABELS, (4, 2), NORMALISATION)
    assert [len(p) for p in data.partition(splits.train, "natural", None, 0)] == [5, 3, 4]
    assert local_layout(tmp_path) == ("NWC", True)


def test_one_folder_holds_out_a_seeded_share(tmp_path):
    write(tmp_path / "mine", 20)
    splits = load_local(tmp_path / "mine")
    train, held = splits.train.x[:, 0, 0].tolist(), splits.heldout.x[:, 0, 0].tolist()
    assert len(held) == 4 and sorted(train + held) == list(range(20))
    assert load_local(tmp_path / "mine").heldout.x[:, 0, 0].tolist() == held  # the same seed, the same share
    assert load_local(tmp_path / "mine", seed=1).heldout.x[:, 0, 0].tolist() != held
    assert len(load_local(tmp_path / "mine", heldout=0.5).heldout) == 10
    assert splits.train.groups is None and local_layout(tmp_path / "mine") == ("NWC", False)


def test_a_client_folder_unlike_the_heldout_is_named(tmp_path):
    write(tmp_path / "client-000", 5)
    write(tmp_path / "client-001", 5, labels=("sit", "walk", "jump"))
    write(tmp_path / "heldout", 5)
    with pytest.raises(LocalDataError, match=r"client-001: expected the labels of .*heldout, \('sit', 'walk', 'run'\)"):
        data.load(str(tmp_path))


@pytest.mark.parametrize("make", ["nothing", "clients only", "a file"])
def test_neither_kind_of_folder_is_refused_saying_what_is_expected(tmp_path, make):
    if make == "clients only":
        write(tmp_path / "client-000", 5)
    elif make == "a file":
        (tmp_path / "x.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"expected a data folder \(with a meta.json\) or the output of `fedge data"):
        load_local(tmp_path)
    with pytest.raises(ValueError, match="expected a dataset among watch, fashion-mnist, synthetic-imu, or a data"):
        data.load(str(tmp_path / "missing"))
