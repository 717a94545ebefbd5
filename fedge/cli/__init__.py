"""The ``fedge`` command: one entry point, a subcommand per job.

Each subcommand lives in the module named after it and imports its heavy parts lazily, so
``fedge --help`` is instant and a device that only runs ``fedge client`` never imports the
server.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from fedge import __version__
from fedge.cli import admin, client, data, gateway, init, keys, models, server, simulate, tls

app = typer.Typer(
    name="fedge",
    help="Federated, privacy-preserving edge training: coordinator, agents and local simulation.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("simulate")(simulate.simulate)
app.command("init")(init.init)
app.command("server")(server.server)
app.command("gateway")(gateway.gateway)
app.command("client")(client.client)
app.add_typer(admin.token_app, name="token")
app.command("status")(admin.status)
app.add_typer(data.app, name="data")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(models.models_app, name="models")
app.add_typer(tls.tls_app, name="tls")

stderr = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"fedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Federated, privacy-preserving edge training: coordinator, agents and local simulation."""


def _bare_flags(command: Any, context: Any) -> None:
    """Typer prints ``<bool>`` beside every flag in --help, as if it took a value (``--tls
    <bool>``): flags are shown bare. ``context`` is the command's, made as click makes it at
    run time, so the help option it caches keeps its names (-h, --help)."""
    for param in [*command.params, command.get_help_option(context)]:
        if param is not None and getattr(param, "is_flag", False):
            param.metavar = ""
    for name, sub in getattr(command, "commands", {}).items():
        _bare_flags(sub, sub.context_class(sub, info_name=name, parent=context, **sub.context_settings))


def main() -> None:
    """Run the CLI; a user's mistake prints one clear line (set FEDGE_DEBUG=1 for a traceback)."""
    from fedge.shared.data import DatasetUnavailable

    command = typer.main.get_command(app)
    _bare_flags(command, command.context_class(command, info_name="fedge", **command.context_settings))
    try:
        command(prog_name="fedge")  # also under `python -m fedge`
    except (ValueError, DatasetUnavailable, OSError) as error:
        if os.environ.get("FEDGE_DEBUG"):
            raise
        stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)  # [task] stays
        sys.exit(2)
