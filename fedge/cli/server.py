"""``fedge server``: run the coordinator daemon in the foreground."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

CONFIG_HELP = "fedge.toml to read (default: ./fedge.toml if present, else the embedded defaults)."


def find_config(path: Path | None) -> Path | None:
    if path is not None:
        return path
    local = Path("fedge.toml")
    return local if local.exists() else None


def server(
    config: Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP, show_default=False)] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: from the config).", show_default=False)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="gRPC port; 0 picks a free one (default: from the config).", show_default=False)
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="State folder (default: from the config).", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request-level event.")] = False,
) -> None:
    """Run the coordinator: rounds over gRPC, state in a SQLite file. Stops cleanly on Ctrl-C / SIGTERM.

    The admin credential is written to <data-dir>/admin.token; `fedge token create` reads it.
    """
    from rich.logging import RichHandler

    from fedge.server.config import load_config
    from fedge.server.daemon import serve_forever

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=True)],
    )
    settings = load_config(find_config(config), {"host": host, "port": port, "data_dir": data_dir})
    serve_forever(settings.server, settings.tasks)
