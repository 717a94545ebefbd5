"""``fedge server``: run the coordinator daemon in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedge.cli.output import configure_logging

CONFIG_HELP = "fedge.toml to read (default: ./fedge.toml if present, else the embedded defaults)."
STATIC_HELP = "Folder of the built web client the gateway serves (default: client/js/dist of a checkout)."
TLS_CERT_HELP = "PEM certificate (chain) to serve TLS with, on gRPC and the gateway (default: from the config)."
TLS_KEY_HELP = "The certificate's PEM private key (default: from the config)."


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
    http_port: Annotated[
        int | None,
        typer.Option(help="Web gateway's HTTP port; 0 runs none (default: from the config).", show_default=False),
    ] = None,
    static: Annotated[Path | None, typer.Option(help=STATIC_HELP, show_default=False)] = None,
    tls_cert: Annotated[Path | None, typer.Option(help=TLS_CERT_HELP, show_default=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(help=TLS_KEY_HELP, show_default=False)] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(
            help="Mutual TLS: PEM CA(s) whose client certificates gRPC clients must present (default: from the "
            "config; docs/tls.md).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request-level event.")] = False,
) -> None:
    """Run the coordinator: rounds over gRPC, state in a SQLite file. Stops cleanly on Ctrl-C / SIGTERM.

    Browsers reach it through the web gateway on the HTTP port (docs/gateway.md). The admin
    credential is written to <data-dir>/admin.token; `fedge token create` reads it.
    """
    from fedge.server.config import load_config
    from fedge.server.daemon import serve_forever
    from fedge.server.gateway import default_static_dir

    configure_logging(verbose)
    overrides = {"host": host, "port": port, "data_dir": data_dir, "http_port": http_port}
    overrides |= {"tls_cert": tls_cert and str(tls_cert), "tls_key": tls_key and str(tls_key)}
    overrides |= {"tls_client_ca": tls_client_ca and str(tls_client_ca)}
    settings = load_config(find_config(config), overrides)
    serve_forever(settings.server, settings.tasks, static or default_static_dir())
