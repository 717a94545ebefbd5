"""``fedge gateway``: the web gateway on its own, in front of a coordinator elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedge.cli.output import configure_logging
from fedge.cli.server import STATIC_HELP, TLS_CERT_HELP, TLS_KEY_HELP
from fedge.cli.tls import TlsCaOption, TlsIdentityOption, TlsOption, client_tls


def gateway(
    coordinator: Annotated[str, typer.Option(help="The coordinator's gRPC address HOST:PORT.")],
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 or :: for the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port; 0 picks a free one.")] = 8080,
    static: Annotated[Path | None, typer.Option(help=STATIC_HELP, show_default=False)] = None,
    tls_cert: Annotated[Path | None, typer.Option(help=TLS_CERT_HELP, show_default=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(help=TLS_KEY_HELP, show_default=False)] = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every socket and request.")] = False,
) -> None:
    """Serve browsers: their calls over a WebSocket (/ws) to the coordinator, the web client, /healthz.

    With --tls-cert/--tls-key it serves https:// and wss://; --tls/--tls-ca reach a coordinator
    that serves TLS.

    Stops cleanly on Ctrl-C / SIGTERM. `fedge server` runs the same gateway itself on its
    http_port; this command is for a gateway on another machine (docs/gateway.md).
    """
    import asyncio

    from fedge.server.gateway import Gateway, default_static_dir, serve_until_signalled
    from fedge.shared.tls import ServerTls

    if not 0 <= port <= 65535:
        raise typer.BadParameter(f"expected a port in 0..65535, got {port}", param_hint="--port")
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("expected --tls-cert and --tls-key together", param_hint="--tls-cert/--tls-key")
    served = ServerTls.load(tls_cert, tls_key) if tls_cert and tls_key else None
    configure_logging(verbose)
    dialling = client_tls(tls, tls_ca, tls_identity)
    gateway = Gateway(coordinator, host, port, static or default_static_dir(), tls=served, coordinator_tls=dialling)
    asyncio.run(serve_until_signalled(gateway))
