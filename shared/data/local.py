"""Your own samples as a dataset to simulate on: one data folder (docs/client-data.md), or what
`fedge data split` writes, client-NNN/ folders and heldout/.

From a split, each client folder is one natural client (``groups``), so a simulation's
`natural` partition forms the federation those devices would, and heldout/ is what the
coordinator scores each version on. One folder has no clients of its own: a seeded share of
its samples is held out, and the rest is partitioned like any dataset without subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedge.shared.data.dataset import Dataset, Splits
from fedge.shared.data.folder import META, LocalDataError, layout_of, load_local_data, write_local_data

HELDOUT = "heldout"
CLIENTS = "client-*"


def client_folder(root: Path, index: int) -> Path:
    """Where a split keeps client ``index``'s samples: client-000, client-001, …"""
    return Path(root) / f"client-{index:03d}"


def write_split(
    out: Path, clients: Sequence[Dataset], heldout: Dataset | None, normalisation: dict[str, Any]
) -> list[Path]:
    """What `fedge data split` writes and ``load_local`` reads back: a data folder per client,
    client-000 …, then heldout/ when given; the folders, in that order."""
    parts = [(client_folder(out, index), client, index) for index, client in enumerate(clients)]
    if heldout is not None:
        parts.append((Path(out) / HELDOUT, heldout, None))
    for folder, data, client in parts:
        write_local_data(folder, data.x, data.y, data.labels, dataset=data.name, normalisation=normalisation,
                         client=client)  # fmt: skip
    return [folder for folder, _, _ in parts]


def load_local(path: Path | str, heldout: float = 0.2, seed: int = 0) -> Splits:
    """The splits of a data folder (``heldout``: the share held out, drawn with ``seed``), or of
    a split's folders (its own heldout/, and a group per client folder)."""
    path = Path(path)
    if (path / META).is_file():
        return _one_folder(path, heldout, seed)
    return _split(path, _client_folders(path))


def local_layout(path: Path | str) -> tuple[str, bool]:
    """The samples' layout (NWC or NHWC) and whether they come as natural clients (a split), read
    from the meta.json files only; ValueError when ``path`` is neither kind of folder."""
    path = Path(path)
    if (path / META).is_file():
        return layout_of(path), False
    _client_folders(path)
    return layout_of(path / HELDOUT), True


def split_folders(path: Path | str) -> list[Path]:
    """A split's data folders: its client folders in name order, then heldout/."""
    path = Path(path)
    return [*_client_folders(path), path / HELDOUT]


def _client_folders(path: Path) -> list[Path]:
    clients = sorted(p for p in path.glob(CLIENTS) if (p / META).is_file()) if path.is_dir() else []
    if not clients or not (path / HELDOUT / META).is_file():
        raise LocalDataError(
            f"{path}: expected a data folder (with a {META}) or the output of `fedge data split` "
            f"(client-NNN/ folders and {HELDOUT}/), got {'neither' if path.is_dir() else 'no such folder'}"
        )
    return clients


def _one_folder(path: Path, heldout: float, seed: int) -> Splits:
    if not 0 < heldout < 1:
        raise ValueError(f"expected a held-out share in (0, 1), got {heldout}")
    local = load_local_data(path)
    if len(local) < 2:
        raise LocalDataError(f"{path}: expected at least 2 samples, to hold some out, got {len(local)}")
    order = np.random.default_rng(seed).permutation(len(local))
    cut = min(len(local) - 1, max(1, round(heldout * len(local))))
    held, train = np.sort(order[:cut]), np.sort(order[cut:])
    whole = Dataset(local.dataset, local.x, local.y, local.labels)
    return Splits(whole.subset(train), whole.subset(held), local.normalisation)


def _split(path: Path, clients: list[Path]) -> Splits:
    held = load_local_data(path / HELDOUT)
    parts = [load_local_data(folder) for folder in clients]
    for folder, part in zip(clients, parts, strict=True):
        for what in ("labels", "sample_shape", "normalisation"):
            if getattr(part, what) != getattr(held, what):
                raise LocalDataError(
                    f"{folder}: expected the {what} of {path / HELDOUT}, {getattr(held, what)}, "
                    f"got {getattr(part, what)}"
                )
    groups = np.concatenate([np.full(len(part), index, np.int64) for index, part in enumerate(parts)])
    x, y = np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts])
    train = Dataset(held.dataset, x, y, held.labels, groups)
    return Splits(train, Dataset(held.dataset, held.x, held.y, held.labels), held.normalisation)
