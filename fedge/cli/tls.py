"""``fedge tls create``: a self-signed certificate for the daemon; and the TLS options every client
command shares (``--tls``, ``--tls-ca``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fedge.shared.tls import ClientTls

tls_app = typer.Typer(help="TLS certificates for the coordinator's ports.", no_args_is_help=True)

TLS_ENVIRONMENT = {"tls": "FEDGE_TLS", "tls_ca": "FEDGE_TLS_CA"}
TlsOption = Annotated[
    bool,
    typer.Option(
        "--tls",
        envvar=TLS_ENVIRONMENT["tls"],
        help="Reach the daemon over TLS, trusting the system's CA roots (see --tls-ca).",
    ),
]
TlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        envvar=TLS_ENVIRONMENT["tls_ca"],
        help="Reach the daemon over TLS, trusting this CA certificate (PEM); for a self-signed daemon, its "
        "certificate file (docs/tls.md).",
        show_default=False,
    ),
]


def client_tls(tls: bool, ca: Path | None) -> ClientTls | None:
    """What ``--tls`` / ``--tls-ca`` ask for: None (plaintext), the system's roots, or a CA file."""
    from fedge.shared.tls import ClientTls

    return ClientTls.from_ca_file(ca) if tls or ca else None


@tls_app.callback()
def _tls() -> None:
    """TLS certificates for the coordinator's ports."""


@tls_app.command("create")
def create(
    host: Annotated[
        list[str],
        typer.Option(
            "--host", help="A DNS name or IP address devices dial (repeatable); localhost and 127.0.0.1 are added."
        ),
    ],
    cert: Annotated[Path, typer.Option(help="Where to write the certificate (PEM).")] = Path("fedge-tls.crt"),
    key: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 0600).")] = Path("fedge-tls.key"),
    days: Annotated[int, typer.Option(min=1, max=825, help="Days the certificate is valid.")] = 825,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Write a self-signed certificate and key for `fedge server --tls-cert/--tls-key` (or fedge.toml).

    Devices trust it with `fedge client --tls-ca CERT`; browsers ask once to accept it. For phones
    and public deployments, a certificate from a CA the devices already trust is smoother.
    """
    from fedge.shared.tls import create_certificate

    for path in (cert, key):
        if path.exists() and not force:
            raise ValueError(f"{path} exists: pass --force to replace it")
    hosts = list(dict.fromkeys([*host, "localhost", "127.0.0.1"]))
    fingerprint = create_certificate(cert, key, hosts, days)
    print(f"certificate  {cert}  (for {', '.join(hosts)}; {days} days)")
    print(f"private key  {key}  (keep it on the coordinator)")
    print(f"SHA-256      {fingerprint}")
    print(f"serve with   fedge server --tls-cert {cert} --tls-key {key}")
    print(f"devices      fedge client --tls-ca {cert} ...")
