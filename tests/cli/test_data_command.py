"""``fedge data split`` as a user runs it: real folders that the client's loader reads back."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from fedge.cli.data import app, loader_options
from fedge.shared.data import Dataset, Splits, load
from fedge.shared.data.folder import load_local_data, write_local_data


def split(*args: str, dataset: str = "synthetic-imu"):
    return CliRunner().invoke(app, ["split", "--dataset", dataset, *args], env={"COLUMNS": "200"})


def test_split_writes_one_folder_per_subject_and_a_heldout_folder(tmp_path):
    result = split("--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"client-00{i}" for i in range(4)] + ["heldout"]
    expected = load("synthetic-imu")
    clients = [load_local_data(tmp_path / f"client-00{i}") for i in range(4)]
    assert [data.client for data in clients] == [0, 1, 2, 3]
    assert sum(len(data) for data in clients) == len(expected.train) == 384
    heldout = load_local_data(tmp_path / "heldout")
    assert heldout.client is None and np.array_equal(heldout.x, expected.heldout.x)
    assert heldout.normalisation == expected.normalisation and heldout.labels == expected.train.labels


def test_split_prints_the_clients_and_the_next_step(tmp_path):
    result = split("--out", str(tmp_path), "--partition", "iid", "--clients", "3")
    assert result.exit_code == 0, result.output
    assert "client-002" in result.output and "heldout" in result.output and "128" in result.output
    assert f"fedge client --server HOST:PORT --token TOKEN --data {tmp_path / 'client-000'}" in result.output


def test_split_without_subjects_defaults_to_ten_iid_clients(tmp_path, monkeypatch):
    splits = load("synthetic-imu")
    train = Dataset("synthetic-imu", splits.train.x[:100], splits.train.y[:100], splits.train.labels)  # no groups
    without_subjects = Splits(train, splits.heldout, splits.normalisation)
    monkeypatch.setattr("fedge.cli.data.load", lambda name, **options: without_subjects)
    assert split("--out", str(tmp_path)).exit_code == 0
    assert [len(load_local_data(tmp_path / f"client-{i:03d}")) for i in range(10)] == [10] * 10


def test_split_cuts_a_folder_of_ones_own_into_clients_and_a_heldout_share(tmp_path):
    whole = load("synthetic-imu").train
    write_local_data(tmp_path / "mine", whole.x, whole.y, whole.labels, dataset="mine", normalisation={})
    result = split("--out", str(tmp_path / "devices"), "--clients", "3", dataset=str(tmp_path / "mine"))
    assert result.exit_code == 0, result.output
    parts = [load_local_data(tmp_path / "devices" / name) for name in ("client-000", "client-001", "client-002")]
    held = load_local_data(tmp_path / "devices" / "heldout")
    assert len(held) == round(0.2 * len(whole)) and {p.dataset for p in [*parts, held]} == {"mine"}
    everything = np.concatenate([p.x for p in [*parts, held]])
    assert sorted(map(bytes, everything)) == sorted(map(bytes, whole.x))  # every sample once, none made up
    again = split("--out", str(tmp_path / "again"), dataset=str(tmp_path / "devices"))  # a split's output, re-cut
    assert again.exit_code == 0 and "Wrote 3 client folders (natural)" in again.output


def test_split_of_neither_a_dataset_nor_a_folder_says_what_it_takes(tmp_path):
    result = split("--out", str(tmp_path / "out"), dataset="mnist")
    assert "expected a dataset among watch, fashion-mnist, synthetic-imu, or a data folder, got 'mnist'" in str(
        result.exception
    )


def test_show_summarises_each_folder_of_a_split_and_names_what_cannot_be_read(tmp_path):
    assert split("--out", str(tmp_path / "split")).exit_code == 0
    (tmp_path / "split" / "client-001" / "late.csv").write_text("0.5\n")  # one broken folder of the split
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text((tmp_path / "split" / "heldout" / "meta.json").read_text())
    (tmp_path / "broken" / "by-hand.csv").write_text("1,2,motion-0\n")
    folders = [str(tmp_path / "split"), str(tmp_path / "broken"), str(tmp_path / "missing")]
    result = CliRunner().invoke(app, ["show", *folders], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    rows = [line for line in result.stdout.splitlines() if str(tmp_path) in line]
    assert [row.split()[1].rsplit("/", 1)[-1] for row in rows] == ["client-000", "client-002", "client-003", "heldout"]
    assert all("4/4" in row and "50 × 6" in row and "standardise" in row for row in rows)
    assert f"error: {tmp_path / 'split' / 'client-001' / 'late.csv'}, line 1: expected 301 columns" in result.stderr
    assert f"error: {tmp_path / 'broken' / 'by-hand.csv'}, line 1: expected 301 columns" in result.stderr
    assert f"error: {tmp_path / 'missing'}: expected a data folder (with a meta.json)" in result.stderr


def test_split_refuses_a_non_empty_folder_without_force(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = split("--out", str(tmp_path))
    assert result.exit_code == 2
    assert "which is not empty (add --force" in result.output
    assert not (tmp_path / "client-000").exists()


def test_split_with_force_replaces_an_earlier_split_and_keeps_other_files(tmp_path):
    assert split("--out", str(tmp_path)).exit_code == 0
    (tmp_path / "notes.txt").write_text("mine")
    assert split("--out", str(tmp_path), "--partition", "iid", "--clients", "2", "--force").exit_code == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["client-000", "client-001", "heldout", "notes.txt"]
    assert len(load_local_data(tmp_path / "client-000")) == 192


def test_limit_for_a_dataset_without_one_is_refused(tmp_path):
    result = split("--out", str(tmp_path), "--limit", "50")
    assert result.exit_code == 2
    assert "expected a dataset that takes a limit (fashion-mnist), got 'synthetic-imu'" in result.output


@pytest.mark.parametrize(("name", "limit", "options"), [("fashion-mnist", 600, {"limit": 600}), ("watch", None, {})])
def test_limit_goes_to_loaders_that_take_one(name, limit, options):
    assert loader_options(name, limit) == options


def test_fashion_mnist_split_keeps_its_limit_and_image_layout(tmp_path, load_or_skip):
    load_or_skip(lambda: load("fashion-mnist", limit=1))
    result = split("--out", str(tmp_path), "--limit", "600", "--clients", "3", dataset="fashion-mnist")
    assert result.exit_code == 0, result.output
    client = load_local_data(tmp_path / "client-000")
    assert (len(client), client.layout, client.sample_shape) == (200, "NHWC", (28, 28, 1))
