"""``fedge data``: make local data folders (docs/client-data.md) for demos and tests.

``fedge data split`` cuts a dataset's training split into one folder per client, plus the
held-out split in ``heldout/`` for the coordinator to evaluate on::

    OUT/client-000/  meta.json, part-0000.npz
    OUT/client-001/  ...
    OUT/heldout/     meta.json ("client": null), part-0000.npz
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from fedge.cli.output import table_console
from fedge.shared.data import DATASETS, Dataset, Splits, load
from fedge.shared.data import LOADERS as _LOADERS
from fedge.shared.data import partition as partition_dataset
from fedge.shared.data.folder import META, LocalDataError, load_local_data
from fedge.shared.data.local import HELDOUT, load_local, split_folders, write_split

DEFAULT_CLIENTS = 10  # for iid and dirichlet; natural has one client per group

OWNED = re.compile(rf"client-\d{{3,}}|{HELDOUT}")  # the folders a split writes, and --force replaces

app = typer.Typer(help="Prepare local data folders for clients.", no_args_is_help=True)


@app.callback()
def _data() -> None:
    """Prepare and check local data folders for clients."""


@app.command()
def split(
    dataset: Annotated[
        str,
        typer.Option(
            help=f"The dataset to cut into clients: {', '.join(DATASETS)}, or samples of your own (a data folder, "
            "a fifth of it held out; or a split's output, re-cut).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder to write client-NNN/ and heldout/ into.", show_default=False)],
    partition: Annotated[
        str | None,
        typer.Option(
            help="iid | dirichlet:ALPHA | natural (one client per subject); by default natural when the data "
            "has subjects, else iid.",
            show_default=False,
        ),
    ] = None,
    clients: Annotated[
        int | None,
        typer.Option(
            min=1, help="Number of clients; by default one per subject for natural, else 10.", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the partition.")] = 0,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Use at most this many training samples (fashion-mnist).", show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty --out, replacing its client and heldout folders.")
    ] = False,
) -> None:
    """Split a dataset's training samples into one data folder per client, plus heldout/."""
    _check_out(out, force)
    splits = load(dataset, **loader_options(dataset, limit))
    scheme = partition or default_partition(splits.train)
    if clients is None and scheme != "natural":
        clients = DEFAULT_CLIENTS
    shares = partition_dataset(splits.train, scheme, clients, seed)
    _clear(out)
    folders = write_split(out, [splits.train.subset(index) for index in shares], splits.heldout, splits.normalisation)
    console = table_console()
    console.print(split_table(splits, shares, folders), soft_wrap=True)
    console.print(f"Wrote {len(shares)} client folders ({scheme}) and {HELDOUT}/ to {out}", soft_wrap=True)
    console.print(
        f"Next, on a device: fedge client --server HOST:PORT --token TOKEN --data {folders[0]}",
        soft_wrap=True,
        highlight=False,
    )


@app.command()
def show(
    folders: Annotated[
        list[Path], typer.Argument(help="Data folders, or the output of a split (its client-NNN/ and heldout/).")
    ],
) -> None:
    """Read data folders as an agent reads them, and summarise each; a folder that cannot be read
    is named with its reason, and the exit status is 2."""
    table = Table(title="data folders", title_justify="left")
    for column in ("folder", "samples", "classes", "largest class", "sample shape", "normalised", "files"):
        table.add_column(column, justify="left" if column in ("folder", "normalised") else "right")
    problems = []
    for path in folders:
        try:
            members = [path] if (path / META).is_file() else split_folders(path)
        except LocalDataError as error:
            problems.append(str(error))
            continue
        for folder in members:  # one broken folder of a split leaves the others shown
            try:
                local = load_local_data(folder)
            except LocalDataError as error:
                problems.append(str(error))
                continue
            shape = " × ".join(map(str, local.sample_shape))
            normalised = local.normalisation.get("method", "yes") if local.normalisation else "no (raw)"
            table.add_row(str(folder), *_histogram_summary(local.y, local.labels), shape, normalised,
                          str(len(local.files)))  # fmt: skip
    console = table_console()
    if table.row_count:
        console.print(table, soft_wrap=True)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        raise typer.Exit(2)


def loader_options(name: str, limit: int | None) -> dict[str, int]:
    """The loader's options for --limit, refused for a dataset whose loader has no limit."""
    if limit is None:
        return {}
    if "limit" not in inspect.signature(_LOADERS.get(name, load_local)).parameters:  # not a dataset: a folder
        limited = [other for other, loader in _LOADERS.items() if "limit" in inspect.signature(loader).parameters]
        raise typer.BadParameter(
            f"expected a dataset that takes a limit ({', '.join(limited)}), got {name!r}", param_hint="--limit"
        )
    return {"limit": limit}


def default_partition(train: Dataset) -> str:
    """One client per subject when the data records subjects, else an even random split."""
    return "iid" if train.groups is None else "natural"


def split_table(splits: Splits, shares: list[np.ndarray], folders: list[Path]) -> Table:
    table = Table(title=f"{splits.train.name}: {len(shares)} clients", title_justify="left")
    for column in ("folder", "samples", "classes", "largest class"):
        table.add_column(column, justify="left" if column == "folder" else "right")
    ys = [splits.train.y[index] for index in shares] + [splits.heldout.y]
    for folder, y in zip(folders, ys, strict=True):
        table.add_row(
            folder.name, *_histogram_summary(y, splits.train.labels), style="dim" if folder.name == HELDOUT else None
        )
    return table


def _histogram_summary(y: np.ndarray, labels: tuple[str, ...]) -> tuple[str, str, str]:
    """Samples, classes present out of all, and the most common class with its share."""
    counts = np.bincount(y, minlength=len(labels))
    top = int(counts.argmax())
    share = counts[top] / max(len(y), 1)
    return f"{len(y):,}", f"{int((counts > 0).sum())}/{len(labels)}", f"{labels[top]} {share:.0%}"


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"expected a folder, got a file at {out}", param_hint="--out")
    if out.exists() and any(out.iterdir()) and not force:
        raise typer.BadParameter(
            f"expected a new or empty folder, got {out}, which is not empty "
            "(add --force to replace its client and heldout folders)",
            param_hint="--out",
        )


def _clear(out: Path) -> None:
    """Remove the folders an earlier split wrote (client-NNN/, heldout/); nothing else."""
    if out.exists():
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink() and OWNED.fullmatch(child.name):
                shutil.rmtree(child)
