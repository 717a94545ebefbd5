"""``fedge keys show``: the coordinator's model-signing key, as devices pin it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

keys_app = typer.Typer(help="The key published models are signed with.", no_args_is_help=True)


@keys_app.callback()
def _keys() -> None:
    """The key published models are signed with."""


@keys_app.command("show")
def show(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Coordinator data dir (default: from ./fedge.toml or fedge-data).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON, for scripts.")] = False,
) -> None:
    """Print the public key (what devices pin) and its fingerprint; never creates a key."""
    from fedge.cli.admin import configured_data_dir
    from fedge.shared import registry

    path = registry.key_path(data_dir or configured_data_dir())
    if not path.exists():
        raise ValueError(f"no signing key at {path}: `fedge server` creates it at first start")
    public = registry.load(path).public_key()
    document = {"fingerprint": public.fingerprint(), "public_key": public.public_bytes().hex(), "file": str(path)}
    if as_json:
        print(json.dumps(document, indent=2))
        return
    for key, value in (
        ("fingerprint", document["fingerprint"]),
        ("public key", document["public_key"]),
        ("file", str(path)),
    ):
        print(f"{key:<12} {value}")
