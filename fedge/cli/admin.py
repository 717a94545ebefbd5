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
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.table import Table

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
    def __init__(self, address: str, credential: str) -> None:
        import grpc

        from fedge.shared.proto import admin_pb2_grpc

        self.channel = grpc.insecure_channel(address)
        self.stub = admin_pb2_grpc.AdminStub(self.channel)
        self.credential = credential

    def _call(self, method: str, request: Any) -> Any:
        import grpc

        try:
            return getattr(self.stub, method)(request, timeout=10)
        except grpc.RpcError as error:
            raise ValueError(f"the daemon refused: {error.code().name}: {error.details()}") from None

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


def backend(server: str | None, data_dir: Path | None, admin_token: str | None) -> AdminBackend:
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
    return DaemonAdmin(server, credential)


def configured_data_dir() -> Path:
    from fedge.cli.server import find_config
    from fedge.server.config import load_config

    return Path(load_config(find_config(None)).server.data_dir)


@token_app.command("create")
def create(
    count: Annotated[int, typer.Option(help="How many tokens.")] = 1,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    admin_token: AdminTokenOption = None,
) -> None:
    """Print new one-time enrolment tokens, one per line."""
    for token in backend(server, data_dir, admin_token).create_tokens(count):
        print(token)


@token_app.command("revoke")
def revoke(
    token_or_client_id: Annotated[str, typer.Argument(help="An unused token, or a client id from `fedge status`.")],
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    admin_token: AdminTokenOption = None,
) -> None:
    """Revoke an enrolment token or an enrolled client (its credential stops working)."""
    kind = backend(server, data_dir, admin_token).revoke(token_or_client_id)
    print(f"revoked {kind} {token_or_client_id}")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status document as JSON, for scripts.")] = False,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    admin_token: AdminTokenOption = None,
) -> None:
    """Show tasks, their recent rounds (and the version each committed), clients, latest metrics."""
    document = backend(server, data_dir, admin_token).status()
    if as_json:
        print(json.dumps(document, indent=2))
        return
    console = Console()
    for table in status_tables(document):
        console.print(table)


def status_tables(document: dict[str, Any]) -> list[Table]:
    tables = []
    for task in document["tasks"]:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in task["latest_metrics"].items() if isinstance(v, float))
        table = Table(
            title=f"task {task['task']}: {task['status']}, version {task['version']}/{task['rounds_total']}  {metrics}",
            title_justify="left",
        )
        for column in ("round", "attempt", "phase", "version", "selected", "reported", "accuracy"):
            table.add_column(column, no_wrap=True)
        table.add_column("note")
        for r in task["rounds"]:
            accuracy = r["metrics"].get("accuracy")
            table.add_row(
                str(r["round"]), str(r["attempt"]), r["phase"], str(r["committed_version"] or "-"), str(r["selected"]),
                str(r["reported"]), f"{accuracy:.4f}" if accuracy is not None else "-", r["reason"] or "",
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
