"""A device's data folder: written, appended to by a logger, hand-made as CSV, and refused
with the file named when it breaks the format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedge.shared.data.folder import DataFolder, LocalDataError, load_local_data, write_local_data

LABELS = ("walk", "run", "sit")
NORMALISATION = {"method": "standardise", "channels": ["x", "y"], "mean": [0.0, 0.0], "std": [1.0, 1.0]}


def samples(n: int, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """n windows of 3 steps × 2 channels whose values count up from `start`; classes cycle."""
    x = (start + np.arange(n * 6, dtype=np.float32)).reshape(n, 3, 2)
    return x, np.arange(n, dtype=np.int64) % len(LABELS)


def folder_with(tmp_path, n: int = 4, **options):
    x, y = samples(n)
    write_local_data(tmp_path / "data", x, y, LABELS, dataset="demo", normalisation=NORMALISATION, **options)
    return tmp_path / "data"


def refusal(folder) -> str:
    with pytest.raises(LocalDataError) as error:
        load_local_data(folder)
    return str(error.value)


def test_written_folder_loads_back_with_its_meta(tmp_path):
    folder = folder_with(tmp_path, client=3)
    data = load_local_data(folder)
    assert len(data) == 4 and data.x.tolist() == samples(4)[0].tolist() and data.y.tolist() == [0, 1, 2, 0]
    assert (data.labels, data.sample_shape, data.dataset, data.layout, data.client) == (
        LABELS,
        (3, 2),
        "demo",
        "NWC",
        3,
    )
    assert data.normalisation == NORMALISATION and data.files == ("part-0000.npz",)


def test_image_samples_get_the_nhwc_layout(tmp_path):
    x = np.zeros((2, 4, 4, 1), np.float32)
    write_local_data(tmp_path, x, np.array([0, 1]), LABELS, dataset="demo", normalisation={})
    assert json.loads((tmp_path / "meta.json").read_text())["layout"] == "NHWC"
    assert load_local_data(tmp_path).sample_shape == (4, 4, 1)


def test_appended_session_files_are_concatenated_in_name_order(tmp_path):
    folder = folder_with(tmp_path, n=2)
    later, earlier = samples(1, start=1000.0), samples(1, start=500.0)
    np.savez(folder / "session-2024-05-02.npz", x=later[0], y=later[1])
    np.savez(folder / "session-2024-05-01.npz", x=earlier[0], y=earlier[1])
    data = load_local_data(folder)
    assert data.files == ("part-0000.npz", "session-2024-05-01.npz", "session-2024-05-02.npz")
    assert data.x[:, 0, 0].tolist() == [0.0, 6.0, 500.0, 1000.0]


def test_csv_samples_take_label_names_or_ids(tmp_path):
    folder = folder_with(tmp_path, n=1)
    (folder / "session.csv").write_text("# six values, then the label\n1,2,3,4,5,6,run\n\n0,0,0,0,0,0,2\n")
    data = load_local_data(folder)
    assert data.y.tolist() == [0, 1, 2]
    assert data.x[1].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_csv_row_with_wrong_column_count_names_its_line(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "by-hand.csv").write_text("1,2,3,4,5,6,walk\n1,2,3,4,5,walk\n")
    assert "by-hand.csv, line 2: expected 7 columns (6 values, then the label), got 6 columns" in refusal(folder)


def test_csv_unknown_label_name_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "by-hand.csv").write_text("1,2,3,4,5,6,jump\n")
    assert "line 1: expected a label among walk, run, sit (or a class id), got 'jump'" in refusal(folder)


def test_csv_value_that_is_not_a_number_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "by-hand.csv").write_text("1,2,three,4,5,6,walk\n")
    assert "line 1: expected numbers before the label, got 'three'" in refusal(folder)


def test_missing_folder_is_refused(tmp_path):
    assert refusal(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'}: expected a data folder, got nothing there"


def test_missing_meta_is_refused(tmp_path):
    assert refusal(tmp_path).endswith(
        "meta.json: expected the folder's description (see docs/client-data.md), got no such file"
    )


def test_a_split_given_for_one_folder_is_refused_naming_the_folders_inside(tmp_path):
    for name in ("client-000", "client-001", "client-002", "client-003", "heldout"):
        write_local_data(tmp_path / name, np.zeros((2, 3, 2), np.float32), np.zeros(2, np.int64), ("a",),
                         dataset="d", normalisation={})  # fmt: skip
    assert refusal(tmp_path).endswith(
        "got no such file (data folders are inside it: client-000, client-001, client-002, …)"
    )


def test_meta_that_is_not_json_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "meta.json").write_text("{format: fedge")
    assert "meta.json: expected JSON, got Expecting property name" in refusal(folder)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("format", "tfrecord", "expected format 'fedge-client-data', got 'tfrecord'"),
        ("version", 2, "expected version 1, got 2"),
        ("layout", "NCW", "expected layout among NWC, NHWC, got 'NCW'"),
        ("sample_shape", [3], "expected sample_shape as 2 positive sizes for layout NWC, got [3]"),
    ],
)
def test_meta_of_another_format_version_or_shape_is_refused(tmp_path, key, value, message):
    folder = folder_with(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, key: value}))
    assert message in refusal(folder)


def test_normalisation_for_other_channels_is_refused(tmp_path):
    with pytest.raises(LocalDataError) as error:
        write_local_data(tmp_path, *samples(1), LABELS, dataset="demo", normalisation={"mean": [0, 0, 0]})
    assert "expected normalisation mean for 2 channels, got 3 values" in str(error.value)


def test_folder_without_sample_files_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "part-0000.npz").unlink()
    assert "expected sample files (*.npz or *.csv) next to meta.json, got none" in refusal(folder)


def test_npz_without_y_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    np.savez(folder / "session.npz", x=samples(1)[0], labels=np.array([0]))
    assert "session.npz: expected arrays x and y, got arrays labels, x" in refusal(folder)


def test_file_that_is_not_an_npz_archive_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "session.npz").write_bytes(b"not a zip")
    assert "session.npz: expected an .npz archive" in refusal(folder)


@pytest.mark.parametrize(
    ("x_dtype", "y_dtype", "message"),
    [("float64", "int64", "x float32, got x float64"), ("float32", "int32", "y int64, got y int32")],
)
def test_npz_with_wrong_dtype_is_refused_with_the_file_name(tmp_path, x_dtype, y_dtype, message):
    folder = folder_with(tmp_path)
    x, y = samples(2)
    np.savez(folder / "session.npz", x=x.astype(x_dtype), y=y.astype(y_dtype))
    assert refusal(folder) == f"{folder / 'session.npz'}: expected {message}"


def test_sample_shape_other_than_meta_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    np.savez(folder / "session.npz", x=np.zeros((2, 4, 2), np.float32), y=np.zeros(2, np.int64))
    assert "session.npz: expected x of shape (N, 3, 2) as in meta.json, got x of shape (2, 4, 2)" in refusal(folder)


def test_class_ids_out_of_range_are_refused(tmp_path):
    folder = folder_with(tmp_path)
    np.savez(folder / "session.npz", x=samples(2)[0], y=np.array([0, 3], np.int64))
    assert "session.npz: expected class ids in [0, 3) for 3 labels, got [0, 3]" in refusal(folder)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_samples_are_refused(tmp_path, bad):
    folder = folder_with(tmp_path)
    x, y = samples(3)
    x[1, 2, 0] = bad
    np.savez(folder / "session.npz", x=x, y=y)
    assert "expected finite values in x, got NaN or Inf in 1 samples (the first is sample 1)" in refusal(folder)


def test_empty_data_is_refused(tmp_path):
    folder = folder_with(tmp_path)
    (folder / "part-0000.npz").unlink()
    np.savez(folder / "session.npz", x=np.zeros((0, 3, 2), np.float32), y=np.zeros(0, np.int64))
    assert refusal(folder) == f"{folder}: expected at least one sample, got 0 in session.npz"


def test_write_refuses_empty_data(tmp_path):
    with pytest.raises(LocalDataError) as error:
        write_local_data(tmp_path, *samples(0), LABELS, dataset="demo", normalisation={})
    assert "expected at least one sample, got 0" in str(error.value)


def test_write_refuses_a_folder_that_already_holds_samples(tmp_path):
    folder = folder_with(tmp_path)
    with pytest.raises(LocalDataError) as error:
        write_local_data(folder, *samples(1), LABELS, dataset="demo", normalisation={})
    assert "expected a new or empty data folder, got one holding part-0000.npz" in str(error.value)


def test_write_refuses_samples_that_would_not_load(tmp_path):
    x, y = samples(2)
    with pytest.raises(LocalDataError) as error:
        write_local_data(tmp_path / "new", x.astype(np.float64), y, LABELS, dataset="demo", normalisation={})
    assert "expected x float32, got x float64" in str(error.value)
    assert not (tmp_path / "new").exists()


def test_a_watched_folder_is_read_again_only_once_its_files_change(tmp_path):
    folder = DataFolder.open(folder_with(tmp_path, n=4))
    assert len(folder.data) == 4 and folder.refresh() is None  # unchanged: nothing read
    x, y = samples(3, start=100.0)
    np.savez(folder.path / "session-0001.npz", x=x, y=y)  # a logger's next session
    grown = folder.refresh()
    assert grown is not None and len(grown) == 7 and grown.x[4:].tolist() == x.tolist()
    assert folder.refresh() is None
    (folder.path / "session-0001.npz").unlink()
    assert len(folder.refresh()) == 4


def test_a_half_written_file_is_refused_until_it_is_whole_and_the_samples_read_before_stay(tmp_path):
    folder = DataFolder.open(folder_with(tmp_path, n=4))
    x, y = samples(2, start=50.0)
    np.savez(tmp_path / "whole.npz", x=x, y=y)
    whole = (tmp_path / "whole.npz").read_bytes()
    (folder.path / "session-0001.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LocalDataError, match=r"session-0001\.npz"):
        folder.refresh()
    assert len(folder.data) == 4
    (folder.path / "session-0001.npz").write_bytes(whole)
    assert len(folder.refresh()) == 6
