"""A data folder: the samples `fedge client --data DIR` trains on, or those a coordinator
evaluates each version on (a task's `evaluate_on`, e.g. the heldout/ of `fedge data split`).

The format (docs/client-data.md has a worked example)::

    DIR/meta.json   {"format": "fedge-client-data", "version": 1, "dataset", "labels",
                     "sample_shape", "layout": "NWC" | "NHWC", "normalisation", "client"}
    DIR/*.npz       arrays x (float32, (N, *sample_shape), channels-last, already normalised)
                    and y (int64 class ids below len(labels))
    DIR/*.csv       hand-made samples: one per row, flattened, the label (name or id) last

Sample files are read in sorted name order and concatenated, so a sensor logger can add one
file per recording session; `DataFolder` reads the folder again when its files change, so the
agent trains on the sessions added while it runs. Every problem raises `LocalDataError` (a
ValueError) whose message names the file and says "expected X, got Y".
"""

from __future__ import annotations

import csv
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from fedge.shared.files import write_atomically

FORMAT = "fedge-client-data"
VERSION = 1
META = "meta.json"
LAYOUTS = {"NWC": 2, "NHWC": 3}  # layout -> dimensions of one sample (W, C) or (H, W, C)
SUFFIXES = (".npz", ".csv")
FIRST_FILE = "part-0000.npz"  # what write_local_data writes; a logger's later files sort after it
META_KEYS = ("dataset", "labels", "sample_shape", "layout", "normalisation", "client")


class LocalDataError(ValueError):
    """A data folder or one of its files breaks the format; the message names which."""


@dataclass(frozen=True, eq=False, repr=False)
class LocalData:
    """Every sample of one data folder, with what meta.json says about them."""

    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    sample_shape: tuple[int, ...]
    dataset: str
    normalisation: dict[str, Any]
    files: tuple[str, ...]  # sample file names, in the order they were read
    layout: str = "NWC"
    client: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (
            f"LocalData({self.dataset!r}, n={len(self)}, sample_shape={self.sample_shape}, "
            f"classes={len(self.labels)}, files={len(self.files)})"
        )


@dataclass(frozen=True)
class _Meta:
    dataset: str
    labels: tuple[str, ...]
    sample_shape: tuple[int, ...]
    layout: str
    normalisation: dict[str, Any] = field(default_factory=dict)
    client: int | None = None

    @classmethod
    def from_json(cls, raw: Any, source: Path) -> _Meta:
        """The checked description; `source` names the file in errors."""
        if not isinstance(raw, dict):
            _fail(source, "a JSON object", type(raw).__name__)
        for key, wanted in (("format", FORMAT), ("version", VERSION)):
            if raw.get(key) != wanted:
                _fail(source, f"{key} {wanted!r}", repr(raw.get(key)))
        missing = [key for key in META_KEYS if key not in raw]
        if missing:
            _fail(source, f"the keys {', '.join(META_KEYS)}", f"no {', '.join(missing)}")
        _check_meta_types(raw, source)
        labels, shape = tuple(raw["labels"]), tuple(raw["sample_shape"])
        return cls(raw["dataset"], labels, shape, raw["layout"], raw["normalisation"], raw["client"])

    def to_json(self) -> dict[str, Any]:
        fields = {**self.__dict__, "labels": list(self.labels), "sample_shape": list(self.sample_shape)}
        return {"format": FORMAT, "version": VERSION, **fields}


def load_local_data(folder: Path) -> LocalData:
    """Every sample in `folder`, checked against its meta.json, files in name order."""
    folder = Path(folder)
    meta = _read_meta(folder)
    paths = _sample_files(folder)
    if not paths:
        _fail(folder, f"sample files ({' or '.join('*' + s for s in SUFFIXES)}) next to {META}", "none")
    parts = [_read_samples(path, meta) for path in paths]
    x = np.concatenate([x for x, _ in parts])
    y = np.concatenate([y for _, y in parts])
    names = tuple(path.name for path in paths)
    if not len(y):
        _fail(folder, "at least one sample", f"0 in {', '.join(names)}")
    return LocalData(
        x, y, meta.labels, meta.sample_shape, meta.dataset, meta.normalisation, names, meta.layout, meta.client
    )


def layout_of(folder: Path) -> str:
    """The samples' layout (NWC or NHWC), from meta.json alone: no sample is read."""
    return _read_meta(Path(folder)).layout


@dataclass
class DataFolder:
    """A data folder that may change while the agent runs, most often a logger adding a session
    file: ``refresh`` reads it again once its listing changed (names, sizes, modification times)."""

    path: Path
    data: LocalData
    listing: tuple[tuple[str, int, int], ...]

    @classmethod
    def open(cls, path: Path) -> DataFolder:
        listing = _listing(Path(path))  # before reading: a file changed meanwhile is read again next time
        return cls(Path(path), load_local_data(path), listing)

    def refresh(self) -> LocalData | None:
        """The samples as they are now if the folder changed since the last read, else None.

        Raises LocalDataError while the folder cannot be read, for instance a file that a
        writer has not finished: the data read before stays, and the next call tries again.
        """
        listing = _listing(self.path)
        if listing == self.listing:
            return None
        self.data, self.listing = load_local_data(self.path), listing
        return self.data


def _listing(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What tells a changed folder apart: meta.json and each sample file, with size and mtime."""
    files = [folder / META, *_sample_files(folder)] if folder.is_dir() else []
    stats = [(path.name, path.stat()) for path in files if path.exists()]
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def write_local_data(
    folder: Path,
    x: np.ndarray,
    y: np.ndarray,
    labels: tuple[str, ...] | list[str],
    *,
    dataset: str,
    normalisation: dict[str, Any],
    client: int | None = None,
    layout: str | None = None,
) -> Path:
    """Make `folder` a data folder holding these samples; returns the sample file written.

    `layout` defaults to NWC for (N, W, C) samples and NHWC for (N, H, W, C). A folder that
    already holds a meta.json or samples is refused rather than mixed with.
    """
    folder, x, y = Path(folder), np.asarray(x), np.asarray(y)
    layout = layout or ("NHWC" if x.ndim == 4 else "NWC")
    raw = {"format": FORMAT, "version": VERSION, "dataset": dataset, "labels": list(labels), "layout": layout}
    raw |= {"sample_shape": list(x.shape[1:]), "normalisation": normalisation, "client": client}
    meta = _Meta.from_json(raw, folder)
    _check_samples(folder, x, y, meta)
    if not len(y):
        _fail(folder, "at least one sample", "0")
    _check_unused(folder)
    try:
        text = _json_lines(meta.to_json())
    except (TypeError, ValueError) as error:
        _fail(folder, "a normalisation of JSON numbers, lists and strings", f"{error}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FIRST_FILE
    write_atomically(path, lambda handle: np.savez(handle, x=x, y=y))
    write_atomically(folder / META, lambda handle: handle.write(text.encode()))
    return path


def _check_unused(folder: Path) -> None:
    """Writing never mixes with an existing folder's samples."""
    if not folder.exists():
        return
    if not folder.is_dir():
        _fail(folder, "a folder", "a file")
    taken = [path.name for path in _sample_files(folder)] + ([META] if (folder / META).exists() else [])
    if taken:
        _fail(folder, "a new or empty data folder", f"one holding {', '.join(taken)}")


def _read_meta(folder: Path) -> _Meta:
    if not folder.exists():
        _fail(folder, "a data folder", "nothing there")
    if not folder.is_dir():
        _fail(folder, "a data folder", "a file")
    path = folder / META
    if not path.is_file():
        inside = sorted(sub.name for sub in folder.iterdir() if (sub / META).is_file())  # a split's output?
        more = ", …" if len(inside) > 3 else ""
        hint = f" (data folders are inside it: {', '.join(inside[:3])}{more})" if inside else ""
        _fail(path, "the folder's description (see docs/client-data.md)", f"no such file{hint}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        _fail(path, "UTF-8 JSON", "undecodable bytes")
    except json.JSONDecodeError as error:
        _fail(path, "JSON", f"{error.msg} at line {error.lineno} column {error.colno}")
    return _Meta.from_json(raw, path)


def _check_meta_types(raw: dict[str, Any], source: Path) -> None:
    labels, shape, layout, normalisation = raw["labels"], raw["sample_shape"], raw["layout"], raw["normalisation"]
    if not isinstance(raw["dataset"], str) or not raw["dataset"]:
        _fail(source, "dataset as a name", repr(raw["dataset"]))
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        _fail(source, "labels as a non-empty list of names", repr(labels))
    if len(set(labels)) != len(labels):
        _fail(source, "distinct labels", repr(labels))
    if layout not in LAYOUTS:
        _fail(source, f"layout among {', '.join(LAYOUTS)}", repr(layout))
    if not isinstance(shape, list) or not all(_is_int(n) and n > 0 for n in shape) or len(shape) != LAYOUTS[layout]:
        _fail(source, f"sample_shape as {LAYOUTS[layout]} positive sizes for layout {layout}", repr(shape))
    if not isinstance(normalisation, dict):
        _fail(source, "normalisation as a JSON object ({} when x is used as it is)", repr(normalisation))
    for key in ("channels", "mean", "std"):
        if isinstance(normalisation.get(key), list) and len(normalisation[key]) != shape[-1]:
            _fail(source, f"normalisation {key} for {shape[-1]} channels", f"{len(normalisation[key])} values")
    if raw["client"] is not None and not (_is_int(raw["client"]) and raw["client"] >= 0):
        _fail(source, "client as a number >= 0 or null", repr(raw["client"]))


def _sample_files(folder: Path) -> list[Path]:
    """Sample files in sorted name order; hidden files (a writer's temporary ones) are skipped."""
    paths = [path for path in folder.iterdir() if path.suffix.lower() in SUFFIXES and not path.name.startswith(".")]
    return sorted((path for path in paths if path.is_file()), key=lambda path: path.name)


def _read_samples(path: Path, meta: _Meta) -> tuple[np.ndarray, np.ndarray]:
    x, y = _read_npz(path) if path.suffix.lower() == ".npz" else _read_csv(path, meta)
    _check_samples(path, x, y, meta)
    return x, y


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not zipfile.is_zipfile(path):
        _fail(path, "an .npz archive (a zip of arrays x and y)", "a file that is not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        _fail(path, "an .npz archive of plain arrays x and y", f"an unreadable one ({error})")
    if "x" not in arrays or "y" not in arrays:
        _fail(path, "arrays x and y", f"arrays {', '.join(sorted(arrays)) or 'none'}")
    return arrays["x"], arrays["y"]


def _read_csv(path: Path, meta: _Meta) -> tuple[np.ndarray, np.ndarray]:
    width = math.prod(meta.sample_shape)
    rows: list[list[float]] = []
    ids: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if not row or row[0].lstrip().startswith("#"):
                    continue
                line = f"{path}, line {reader.line_num}"
                if len(row) != width + 1:
                    _fail(line, f"{width + 1} columns ({width} values, then the label)", f"{len(row)} columns")
                rows.append(_numbers(row[:-1], line))
                ids.append(_class_id(row[-1].strip(), meta.labels, line))
    except UnicodeDecodeError:
        _fail(path, "UTF-8 text", "undecodable bytes")
    x = np.array(rows, dtype=np.float32).reshape(-1, *meta.sample_shape)
    return x, np.array(ids, dtype=np.int64)


def _numbers(values: list[str], line: str) -> list[float]:
    try:
        return [float(value) for value in values]
    except ValueError:
        bad = next(value for value in values if not _is_number(value))
        _fail(line, "numbers before the label", repr(bad))


def _class_id(text: str, labels: tuple[str, ...], line: str) -> int:
    """A label name, or else a class id."""
    if text in labels:
        return labels.index(text)
    try:
        number = int(text)
    except ValueError:
        _fail(line, f"a label among {', '.join(labels)} (or a class id)", repr(text))
    if not 0 <= number < len(labels):
        _fail(line, f"a class id in [0, {len(labels)})", number)
    return number


def _check_samples(source: Path, x: np.ndarray, y: np.ndarray, meta: _Meta) -> None:
    """What every sample file, and every write, must satisfy."""
    if x.dtype != np.float32:
        _fail(source, "x float32", f"x {x.dtype}")
    if y.dtype != np.int64:
        _fail(source, "y int64", f"y {y.dtype}")
    if x.shape[1:] != meta.sample_shape:
        expected = ", ".join(["N", *map(str, meta.sample_shape)])
        _fail(source, f"x of shape ({expected}) as in {META}", f"x of shape {x.shape}")
    if y.shape != (len(x),):
        _fail(source, f"y of shape ({len(x)},), one class id per sample", f"y of shape {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= len(meta.labels)):
        _fail(source, f"class ids in [0, {len(meta.labels)}) for {len(meta.labels)} labels", f"[{y.min()}, {y.max()}]")
    finite = np.isfinite(x).reshape(len(x), math.prod(meta.sample_shape)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        _fail(source, "finite values in x", f"NaN or Inf in {len(bad)} samples (the first is sample {bad[0]})")


def _json_lines(fields: dict[str, Any]) -> str:
    """A JSON object with one key per line, so meta.json reads well and diffs cleanly."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in fields.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fail(source: Path | str, expected: str, got: Any) -> NoReturn:
    raise LocalDataError(f"{source}: expected {expected}, got {got}")
