"""``fedge tls create``: a self-signed certificate for the daemon; and the TLS options every client
command shares (``--tls``, ``--tls-ca``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fedge.shared.tls import ClientTls

tls_app = typer.Typer(help="TLS certificates for the coordinator's ports.", no_args_is_help=True)

TLS_ENVIRONMENT = {"tls": "FEDGE_TLS", "tls_ca": "FEDGE_TLS_CA", "tls_identity": "FEDGE_TLS_IDENTITY"}
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


TlsIdentityOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-identity",
        envvar=TLS_ENVIRONMENT["tls_identity"],
        help="For a daemon that asks for client certificates (mutual TLS): this client's certificate and key, "
        "one PEM file from `fedge tls client-cert` (docs/tls.md).",
        show_default=False,
    ),
]


def client_tls(tls: bool, ca: Path | None, identity: Path | None = None) -> ClientTls | None:
    """What ``--tls`` / ``--tls-ca`` / ``--tls-identity`` ask for: None (plaintext), or TLS trusting
    the system's roots or a CA file, presenting the identity if given."""
    from fedge.shared.tls import ClientTls

    return ClientTls.from_files(ca, identity) if tls or ca or identity else None


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

    _refuse_existing(cert, key, force=force)
    hosts = list(dict.fromkeys([*host, "localhost", "127.0.0.1"]))
    fingerprint = create_certificate(cert, key, hosts, days)
    print(f"certificate  {cert}  (for {', '.join(hosts)}; {days} days)")
    print(f"private key  {key}  (keep it on the coordinator)")
    print(f"SHA-256      {fingerprint}")
    print(f"serve with   fedge server --tls-cert {cert} --tls-key {key}")
    print(f"devices      fedge client --tls-ca {cert} ...")


def _refuse_existing(*paths: Path, force: bool) -> None:
    for path in paths:
        if path.exists() and not force:
            raise ValueError(f"{path} exists: pass --force to replace it")


@tls_app.command("client-ca")
def client_ca(
    cert: Annotated[Path, typer.Option(help="Where to write the CA certificate (PEM).")] = Path("fedge-clients-ca.crt"),
    key: Annotated[Path, typer.Option(help="Where to write its private key (PEM, mode 0600).")] = Path(
        "fedge-clients-ca.key"
    ),
    name: Annotated[str, typer.Option(help="The CA's name in its certificate.")] = "fedge clients CA",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days the CA is valid.")] = 3650,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Write a CA for devices' client certificates: mutual TLS (the daemon's tls_client_ca).

    Keep its key off the coordinator if you can: whoever holds it can issue client certificates.
    """
    from fedge.shared.tls import create_client_ca

    _refuse_existing(cert, key, force=force)
    fingerprint = create_client_ca(cert, key, name, days)
    print(f"CA certificate  {cert}  ({days} days)")
    print(f"CA private key  {key}  (it issues client certificates: keep it safe)")
    print(f"SHA-256         {fingerprint}")
    print(f"require with    fedge server --tls-client-ca {cert}  (with --tls-cert and --tls-key)")
    print(f"issue with      fedge tls client-cert --name DEVICE --ca-cert {cert} --ca-key {key}")


@tls_app.command("client-cert")
def client_cert(
    name: Annotated[str, typer.Option(help="The client's name in its certificate, e.g. the device's.")],
    ca_cert: Annotated[Path, typer.Option(help="The CA certificate (`fedge tls client-ca`).")] = Path(
        "fedge-clients-ca.crt"
    ),
    ca_key: Annotated[Path, typer.Option(help="The CA's private key.")] = Path("fedge-clients-ca.key"),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the certificate and key, one PEM file (default: NAME.pem).", show_default=False
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=825, help="Days the certificate is valid.")] = 825,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Issue a client certificate from the CA, with its key, into one PEM file (mode 0600).

    Copy it to the device, which presents it with `--tls-identity FILE` (or FEDGE_TLS_IDENTITY).
    """
    from fedge.shared.tls import issue_client_identity

    path = out or Path(f"{name}.pem")
    _refuse_existing(path, force=force)
    fingerprint = issue_client_identity(ca_cert, ca_key, path, name, days)
    print(f"identity  {path}  (certificate and key for {name!r}, {days} days: copy it to the device only)")
    print(f"SHA-256   {fingerprint}")
    print(f"use with  fedge client --tls-identity {path} --tls-ca SERVER_CERT ...")
