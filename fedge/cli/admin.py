"""Operator commands: ``fedge token create|revoke`` and ``fedge status``.

They talk to a running daemon (``--server``, with the admin credential from ``--admin-token``,
FEDGE_ADMIN_TOKEN or <data-dir>/admin.token) or, without ``--server``, read and write the data
dir directly.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from rich.table import Table

from fedge.cli.output import table_console
from fedge.cli.tls import TlsCaOption, TlsIdentityOption, TlsOption, client_tls

if TYPE_CHECKING:
    from fedge.shared.tls import ClientTls

token_app = typer.Typer(help="Enrolment tokens: one per client, used once.", no_args_is_help=True)

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Daemon address HOST:PORT (default: use the data dir).", show_default=False),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(help="Coordinator data dir (default: from ./fedge.toml or fedge-data).", show_default=False),
]
AdminTokenOption = Annotated[
    str | None,
    typer.Option(help="Admin credential (default: $FEDGE_ADMIN_TOKEN or <data-dir>/admin.token).", show_default=False),
]


class AdminBackend(Protocol):
    def create_tokens(self, count: int) -> list[str]: ...

    def revoke(self, token_or_client_id: str) -> str: ...

    def status(self) -> dict[str, Any]: ...


class DaemonAdmin:
    def __init__(self, address: str, credential: str, tls: ClientTls | None = None) -> None:
        from fedge.shared.proto import admin_pb2_grpc
        from fedge.shared.tls import channel

        self.address, self.channel = address, channel(address, tls)
        self.stub = admin_pb2_grpc.AdminStub(self.channel)
        self.credential = credential

    def _call(self, method: str, request: Any) -> Any:
        import grpc

        try:
            return getattr(self.stub, method)(request, timeout=10)
        except grpc.RpcError as error:
            raise refusal(self.address, error) from None

    def create_tokens(self, count: int) -> list[str]:
        from fedge.shared.proto import admin_pb2 as apb

        return list(
            self._call("CreateTokens", apb.CreateTokensRequest(admin_credential=self.credential, count=count)).tokens
        )

    def revoke(self, token_or_client_id: str) -> str:
        from fedge.shared.proto import admin_pb2 as apb

        request = apb.RevokeTokenRequest(admin_credential=self.credential, token_or_client_id=token_or_client_id)
        return self._call("RevokeToken", request).revoked

    def status(self) -> dict[str, Any]:
        from fedge.shared.proto import admin_pb2 as apb

        return json.loads(self._call("GetStatus", apb.GetStatusRequest(admin_credential=self.credential)).status_json)


def refusal(address: str, error: Any) -> ValueError:
    """A failed call to a daemon (a grpc.RpcError) as one line; an unreachable one with what to check."""
    code = error.code().name
    if code == "UNAVAILABLE":
        return ValueError(
            f"cannot reach the daemon at {address} (UNAVAILABLE: {error.details()}): is it running, and does it "
            "serve TLS (pass --tls-ca or --tls) or plaintext, and does it ask for a client certificate "
            "(--tls-identity)?"
        )
    return ValueError(f"the daemon at {address} refused: {code}: {error.details()}")


class DataDirAdmin:
    def __init__(self, data_dir: Path) -> None:
        from fedge.server.store import Store

        if not (data_dir / "fedge.sqlite").exists():
            raise ValueError(f"no coordinator state in {data_dir}: start `fedge server` first, or pass --data-dir")
        self.store = Store(data_dir)

    def create_tokens(self, count: int) -> list[str]:
        if not 1 <= count <= 10_000:
            raise ValueError(f"expected 1 <= count <= 10000, got {count}")
        return self.store.create_tokens(count)

    def revoke(self, token_or_client_id: str) -> str:
        from fedge.server.errors import NotFound

        try:
            return self.store.revoke(token_or_client_id)
        except NotFound as error:
            raise ValueError(error.message) from None

    def status(self) -> dict[str, Any]:
        from fedge.server.status import status

        return status(self.store)


def backend(
    server: str | None, data_dir: Path | None, admin_token: str | None, tls: ClientTls | None = None
) -> AdminBackend:
    data_dir = data_dir or configured_data_dir()
    if server is None:
        return DataDirAdmin(data_dir)
    credential = admin_token or os.environ.get("FEDGE_ADMIN_TOKEN")
    if not credential:
        path = data_dir / "admin.token"
        if not path.exists():
            raise ValueError(
                f"no admin credential: pass --admin-token or set FEDGE_ADMIN_TOKEN ({path} does not exist)"
            )
        credential = path.read_text().strip()
    return DaemonAdmin(server, credential, tls)


def configured_data_dir() -> Path:
    from fedge.cli.server import find_config
    from fedge.server.config import load_config

    return Path(load_config(find_config(None)).server.data_dir)


@token_app.command("create")
def create(
    count: Annotated[int, typer.Option(help="How many tokens.")] = 1,
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Print join links for browsers (BASE-URL/#token=TOKEN, with &key= the model-signing key the page "
            "pins, when the data dir holds it) instead of tokens.",
        ),
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Where browsers reach the gateway, e.g. http://192.168.1.20:8080 (default: the config's host and "
            "http_port; a wildcard host becomes this machine's address).",
            show_default=False,
        ),
    ] = None,
    qr: Annotated[bool, typer.Option("--qr", help="Also draw each link as a QR code in the terminal.")] = False,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    admin_token: AdminTokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
) -> None:
    """Print new one-time enrolment tokens, one per line (or join links, with --link or --qr)."""
    if not (link or qr):
        for token in backend(server, data_dir, admin_token, client_tls(tls, tls_ca, tls_identity)).create_tokens(count):
            print(token)
        return
    base = base_url or configured_base_url(server)
    key = model_key(data_dir)
    for token in backend(server, data_dir, admin_token, client_tls(tls, tls_ca, tls_identity)).create_tokens(count):
        print(join_link(base, token, key))
        if qr:
            print(qr_code(join_link(base, token, key)))


def join_link(base_url: str, token: str, key: str | None = None) -> str:
    """The page's address with the token in the fragment, which browsers never send to a server or log;
    with ``key``, the coordinator's model-signing key (hex) too, which the page pins for published models."""
    return f"{base_url.rstrip('/')}/#token={token}" + (f"&key={key}" if key else "")


def model_key(data_dir: Path | None) -> str | None:
    """The coordinator's public signing key as hex, when its data dir is at hand and holds one."""
    from fedge.shared import registry

    try:
        return registry.load(registry.key_path(data_dir or configured_data_dir())).public_key().public_bytes().hex()
    except (ValueError, OSError):  # no fedge.toml, no key yet, or not ours to read: the owner pastes it instead
        return None


def configured_base_url(server: str | None) -> str:
    """http(s)://HOST:HTTP_PORT of the gateway, from fedge.toml (the host of --server, when given)."""
    from fedge.cli.server import find_config
    from fedge.server.config import load_config

    settings = load_config(find_config(None)).server
    if not settings.http_port:
        raise ValueError("the web gateway is off (http_port = 0): pass --base-url where browsers reach one")
    host = server.rsplit(":", 1)[0] if server else settings.host
    scheme = "https" if settings.tls_cert else "http"
    return f"{scheme}://{reachable_host(host)}:{settings.http_port}"


def reachable_host(host: str) -> str:
    """A wildcard bind address is no address to give a phone: use this machine's outward-facing one."""
    import socket

    if host not in ("0.0.0.0", "::", ""):
        return f"[{host}]" if ":" in host else host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP "connect" only picks the route: nothing is sent
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


def qr_code(text: str) -> str:
    """``text`` as a QR code of Unicode half blocks (two modules per character cell), for any terminal."""
    import io

    import segno

    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


@token_app.command("revoke")
def revoke(
    token_or_client_id: Annotated[str, typer.Argument(help="An unused token, or a client id from `fedge status`.")],
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    admin_token: AdminTokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
) -> None:
    """Revoke an enrolment token or an enrolled client (its credential stops working)."""
    kind = backend(server, data_dir, admin_token, client_tls(tls, tls_ca, tls_identity)).revoke(token_or_client_id)
    print(f"revoked {kind} {token_or_client_id}")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status document as JSON, for scripts.")] = False,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    admin_token: AdminTokenOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
) -> None:
    """Show tasks, their recent rounds (and the version each committed), clients, latest metrics."""
    document = backend(server, data_dir, admin_token, client_tls(tls, tls_ca, tls_identity)).status()
    if as_json:
        print(json.dumps(document, indent=2))
        return
    console = table_console()
    if document.get("server"):
        console.print(server_line(document["server"], document["now"]), highlight=False, soft_wrap=True)
    for table in status_tables(document):
        console.print(table)


def server_line(about: dict[str, Any], now: float) -> str:
    """The daemon in one line: where, over what (and until when), its gateway, how long up."""
    from fedge.shared.tls import RENEW_DAYS

    if about["tls"]:
        days = (about["certificate_expires"] - now) / 86400
        kind = "mutual TLS" if about.get("client_certificates") else "TLS"
        transport = f"{kind}, certificate expires in {days:.0f} days" + (" (renew it)" if days < RENEW_DAYS else "")
    else:
        transport = "plaintext"
    parts = [f"server {about['address']} ({transport})", f"up {_duration(now - about['started'])}"]
    if about.get("gateway"):
        parts.append(f"gateway {about['gateway']}")
    parts.append(f"signing key {about['signing_key']}")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, hours = int(seconds // 60) % 60, int(seconds // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h {minutes}m" if hours else f"{minutes}m"


# The latest metrics an operator reads first: held-out scores, the devices' scores, the privacy spent
FIRST_METRICS = ("accuracy", "loss", "eval_accuracy", "eval_loss", "epsilon", "epsilon_round", "delta")


def metrics_line(metrics: dict[str, Any]) -> str:
    """``accuracy 0.6896, loss 0.9565, …, train_loss 0.2753``: the held-out figures before the rest."""
    rank = {name: i for i, name in enumerate(FIRST_METRICS)}
    figures = sorted(
        (rank.get(k, len(rank)), i, k, v) for i, (k, v) in enumerate(metrics.items()) if isinstance(v, float)
    )
    return ", ".join(f"{k} {v:.4g}" for *_, k, v in figures)


def status_tables(document: dict[str, Any]) -> list[Table]:
    tables = []
    for task in document["tasks"]:
        metrics = metrics_line(task["latest_metrics"])
        table = Table(
            title=f"task {task['task']}: {task['status']}, version {task['version']}/{task['rounds_total']}  {metrics}",
            title_justify="left",
        )
        scores = {"accuracy": "accuracy"}
        if any("eval_accuracy" in r["metrics"] for r in task["rounds"]):  # a task with a holdout
            scores["eval_accuracy"] = "on devices"  # how the model the cohort received did on its held-out samples
        for column in ("round", "attempt", "phase", "version", "selected", "reported", *scores.values()):
            table.add_column(column, no_wrap=True)
        table.add_column("note")
        for r in task["rounds"]:
            figures = [r["metrics"].get(key) for key in scores]
            table.add_row(
                str(r["round"]), str(r["attempt"]), r["phase"], str(r["committed_version"] or "-"), str(r["selected"]),
                str(r["reported"]), *(f"{f:.4f}" if f is not None else "-" for f in figures), r["reason"] or "",
            )  # fmt: skip
        tables.append(table)
    clients = Table(title=f"clients ({document['unused_tokens']} unused tokens)", title_justify="left")
    for column in ("client", "platform", "name", "last seen", "revoked"):
        clients.add_column(column)
    for c in document["clients"]:
        seen = time.strftime("%H:%M:%S", time.localtime(c["last_seen"])) if c["last_seen"] else "-"
        clients.add_row(c["client_id"], c["platform"] or "", c["name"] or "", seen, "yes" if c["revoked"] else "")
    tables.append(clients)
    return tables
