"""``fedge gateway``: the web gateway on its own, in front of a coordinator elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedge.cli.server import STATIC_HELP, configure_logging


def gateway(
    coordinator: Annotated[str, typer.Option(help="The coordinator's gRPC address HOST:PORT.")],
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 or :: for the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port; 0 picks a free one.")] = 8080,
    static: Annotated[Path | None, typer.Option(help=STATIC_HELP, show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every socket and request.")] = False,
) -> None:
    """Serve browsers: their calls over a WebSocket (/ws) to the coordinator, the web client, /healthz.

    Stops cleanly on Ctrl-C / SIGTERM. `fedge server` runs the same gateway itself on its
    http_port; this command is for a gateway on another machine (docs/gateway.md).
    """
    import asyncio

    from fedge.server.gateway import Gateway, default_static_dir, serve_until_signalled

    if not 0 <= port <= 65535:
        raise typer.BadParameter(f"expected a port in 0..65535, got {port}", param_hint="--port")
    configure_logging(verbose)
    asyncio.run(serve_until_signalled(Gateway(coordinator, host, port, static or default_static_dir())))
