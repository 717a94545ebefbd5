"""``fedge init``: write a commented fedge.toml to start a coordinator from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def init(
    force: Annotated[bool, typer.Option("--force", help="Replace an existing fedge.toml.")] = False,
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder to write fedge.toml into (created if missing).", file_okay=False)
    ] = Path("."),
) -> None:
    """Write fedge.toml: the coordinator's settings and one example task, every key commented.

    The example trains the har-cnn1d model on smartwatch exercise windows (7 labels).
    """
    from fedge.server.config import load_config, write_template

    path = write_template(directory, force=force)
    config = load_config(path, environ={})  # what the file says, before environment and flags
    server = config.server
    typer.echo(f"Wrote {path}: a coordinator on {server.host}:{server.port} keeping its state in {server.data_dir}/")
    for task in config.tasks:
        typer.echo(
            f"  task {task.name!r}: {task.model}, {task.num_classes} labels, {task.rounds} rounds of "
            f"{task.clients_per_round} clients, {task.strategy}"
        )
    steps = [] if directory.resolve() == Path.cwd().resolve() else [(f"cd {directory}", "")]
    steps += [
        ("fedge server", "start the coordinator with this file"),
        ("fedge token create", "make an enrolment token for each client"),
    ]
    typer.echo("Next:")
    for command, why in steps:
        typer.echo(f"  {command:<20} {why}".rstrip())
