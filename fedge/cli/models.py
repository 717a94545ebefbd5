"""``fedge models list | pull | verify | predict``: published models, from a daemon or a data dir.

A model is named ``TASK`` (its newest version) or ``TASK@VERSION``, fetched from a daemon
(``--server``) or a data dir (``--data-dir``; a ``fedge simulate --out`` folder works too), or
given as a folder that holds model.onnx, manifest.json and manifest.sig (what ``pull`` writes).

Signatures are checked against a pinned public key: ``--public-key`` or FEDGE_PUBLIC_KEY (what
``fedge keys show`` prints on the coordinator), or, next to a data dir, the key in it. ``verify``
and ``predict`` never run or bless a model they could not check.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import numpy as np
import typer
from rich.table import Table

from fedge.cli.admin import DataDirOption, ServerOption, refusal
from fedge.cli.output import table_console
from fedge.cli.tls import TlsCaOption, TlsIdentityOption, TlsOption, client_tls

if TYPE_CHECKING:
    from fedge.shared.tls import ClientTls

models_app = typer.Typer(help="Published models: list, pull, verify, predict.", no_args_is_help=True)

PublicKeyOption = Annotated[
    str | None,
    typer.Option(
        help="The coordinator's public key, hex (`fedge keys show`; default: $FEDGE_PUBLIC_KEY, or the data dir's).",
        show_default=False,
    ),
]
Int8Option = Annotated[bool, typer.Option("--int8", help="The int8 copy instead of the fp32 model.")]
ModelArgument = Annotated[str, typer.Argument(help="TASK, TASK@VERSION, or a folder holding a pulled model.")]


@dataclass(frozen=True)
class Published:
    """One published model as it travels: the signed manifest, its signature, the model file."""

    manifest_json: bytes
    signature: bytes
    model: bytes = b""

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_json)


class Source(Protocol):
    def entries(self, task: str) -> list[Published]: ...

    def fetch(self, task: str, version: int, variant: str) -> Published: ...


class DaemonSource:
    """The daemon's Registry service over gRPC."""

    def __init__(self, address: str, tls: ClientTls | None = None) -> None:
        from fedge.shared.proto import registry_pb2_grpc
        from fedge.shared.tls import channel

        self.address = address
        self.stub = registry_pb2_grpc.RegistryStub(channel(address, tls))

    def entries(self, task: str) -> list[Published]:
        from fedge.shared.proto import registry_pb2 as rpb

        reply = self._call(lambda: self.stub.ListModels(rpb.ListModelsRequest(task_id=task), timeout=10))
        return [Published(m.manifest_json, m.signature) for m in reply.models]

    def fetch(self, task: str, version: int, variant: str) -> Published:
        from fedge.shared.proto import registry_pb2 as rpb

        request = rpb.GetModelRequest(task_id=task, version=version, variant=variant)
        chunks = self._call(lambda: list(self.stub.GetModel(request, timeout=60)))
        if not chunks or not chunks[0].HasField("model"):
            raise ValueError(f"{self.address} sent no manifest for {task}")
        head = chunks[0].model
        return Published(head.manifest_json, head.signature, b"".join(c.data for c in chunks[1:]))

    def _call(self, call: Any) -> Any:
        import grpc

        try:
            return call()
        except grpc.RpcError as error:
            raise refusal(self.address, error) from None


class DataDirSource:
    """The registry folder of a coordinator's data dir, read directly."""

    def __init__(self, data_dir: Path) -> None:
        from fedge.server.serving import Catalog

        self.data_dir = data_dir
        self.catalog = Catalog(data_dir / "registry")

    def entries(self, task: str) -> list[Published]:
        return [Published(e.manifest_json, e.signature) for e in self.catalog.entries(task)]

    def fetch(self, task: str, version: int, variant: str) -> Published:
        from fedge.server.errors import FedgeError

        try:
            return read_folder(self.catalog.folder(task, version, variant))
        except FedgeError as error:
            raise ValueError(f"{self.data_dir}: {error.message}") from None


def read_folder(folder: Path) -> Published:
    from fedge.shared import registry

    missing = [n for n in (registry.MODEL, registry.MANIFEST, registry.SIGNATURE) if not (folder / n).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a published model: no {', '.join(missing)}")
    return Published(*((folder / n).read_bytes() for n in (registry.MANIFEST, registry.SIGNATURE, registry.MODEL)))


SIMULATION_DATA_DIRS = ("coordinator", "loopback/coordinator")  # under `fedge simulate --out`: inprocess, grpc


def data_dir_of(path: Path) -> Path:
    """A coordinator data dir; a `fedge simulate --out` folder names its coordinator's in summary.json,
    and one still running (no summary yet) holds it at one of SIMULATION_DATA_DIRS."""
    summary = path / "summary.json"
    if summary.is_file():
        return Path(json.loads(summary.read_text())["coordinator_data_dir"])
    if not (path / "fedge.sqlite").exists():
        for inner in SIMULATION_DATA_DIRS:
            if (path / inner / "fedge.sqlite").exists():
                return path / inner
    return path


def source(server: str | None, data_dir: Path | None, tls: ClientTls | None = None) -> tuple[Source, Path | None]:
    """The daemon at ``server`` (over TLS when ``tls``, a ClientTls, is given), else a data dir."""
    if server is not None:
        return DaemonSource(server, tls), data_dir
    from fedge.cli.admin import configured_data_dir

    data_dir = data_dir_of(data_dir or configured_data_dir())
    return DataDirSource(data_dir), data_dir


def pinned_key(public_key: str | None, data_dir: Path | None, folder: Path | None = None) -> Any:
    """The key to check signatures with, or None when there is none to be had."""
    from fedge.shared import registry

    text = public_key or os.environ.get("FEDGE_PUBLIC_KEY")
    if text:
        try:
            return registry.VerifyKey.from_bytes(bytes.fromhex(text.strip()))
        except ValueError as error:
            message = f"--public-key: expected 64 hex characters (`fedge keys show`), got {text!r}: {error}"
            raise ValueError(message) from None
    candidates = [data_dir] if data_dir is not None else []
    if folder is not None:  # a folder inside a data dir's registry: <data_dir>/registry/<task>/<version>[/int8]
        candidates += [p for p in folder.resolve().parents if p.name == "registry"][:1]
        candidates = [c.parent if c.name == "registry" else c for c in candidates]
    for candidate in candidates:
        if registry.key_path(candidate).is_file():
            return registry.load(registry.key_path(candidate)).public_key()
    return None


def checked(published: Published, key: Any, wanted_task: str | None = None, wanted_version: int = 0) -> Any:
    """The verified Manifest, or ValueError saying why this model must not be used."""
    from fedge.shared import registry

    if key is None:
        raise ValueError(
            "no public key to check the signature with: pass --public-key (the coordinator prints it with "
            "`fedge keys show`) or set FEDGE_PUBLIC_KEY"
        )
    try:
        manifest = registry.verify(key, published.manifest_json, published.signature, published.model)
    except registry.VerificationError as error:
        raise ValueError(f"refused: {error}") from None
    if wanted_task is not None and manifest.task != wanted_task:
        raise ValueError(f"refused: asked for task {wanted_task!r}, got a model of task {manifest.task!r}")
    if wanted_version and manifest.version != wanted_version:
        raise ValueError(f"refused: asked for version {wanted_version}, got version {manifest.version}")
    return manifest


def parse_name(name: str) -> tuple[str, int]:
    task, _, version = name.partition("@")
    if version and not version.isdigit():
        raise ValueError(f"expected TASK or TASK@VERSION (a number), got {name!r}")
    return task, int(version or 0)


def resolve(
    name: str,
    server: str | None,
    data_dir: Path | None,
    public_key: str | None,
    int8: bool,
    tls: ClientTls | None = None,
) -> Any:
    """Fetch and verify a model: from a folder when ``name`` is one, else from a daemon or data dir."""
    folder = Path(name)
    if folder.is_dir():
        published = read_folder(folder)
        return published, checked(published, pinned_key(public_key, data_dir and data_dir_of(data_dir), folder))
    task, version = parse_name(name)
    origin, data_dir = source(server, data_dir, tls)
    published = origin.fetch(task, version, "int8" if int8 else "fp32")
    return published, checked(published, pinned_key(public_key, data_dir), task, version)


# -- commands ---------------------------------------------------------------------------------------
@models_app.callback()
def _models() -> None:
    """Published models: list, pull, verify, predict."""


@models_app.command("list")
def list_models(
    task: Annotated[str, typer.Option(help="Only this task's models.")] = "",
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifests as JSON, for scripts.")] = False,
) -> None:
    """Every published model, oldest first, with its held-out metrics."""
    origin, _ = source(server, data_dir, client_tls(tls, tls_ca, tls_identity))
    entries = origin.entries(task)
    if as_json:
        print(json.dumps([e.manifest | {"signature": e.signature.hex()} for e in entries], indent=2))
        return
    table = Table(title=f"{len(entries)} published model(s)", title_justify="left")
    scores = {"accuracy": "accuracy", "loss": "loss"}
    if any("eval_accuracy" in e.manifest["metrics"] for e in entries):  # published by the devices' scores
        scores["eval_accuracy"] = "on devices"
    for column in ("task", "version", "variant", *scores.values(), "size", "created"):
        table.add_column(column, justify="left" if column in ("task", "variant", "created") else "right")
    for entry in entries:
        m = entry.manifest
        figures = [m["metrics"].get(key) for key in scores]
        table.add_row(
            m["task"],
            str(m["version"]),
            m["quantization"],
            *(f"{f:.4f}" if f is not None else "-" for f in figures),
            f"{m['size'] / 1024:.0f} KiB",
            m["created"],
        )
    table_console().print(table)


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="TASK or TASK@VERSION.")],
    out: Annotated[Path | None, typer.Option(help="Folder to write (default: ./TASK-vVERSION).")] = None,
    int8: Int8Option = False,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
    public_key: PublicKeyOption = None,
) -> None:
    """Download a model with its manifest and signature, verified when a key is known."""
    from fedge.shared import registry

    task, version = parse_name(name)
    origin, data_dir = source(server, data_dir, client_tls(tls, tls_ca, tls_identity))
    published = origin.fetch(task, version, "int8" if int8 else "fp32")
    key = pinned_key(public_key, data_dir)
    manifest = checked(published, key, task, version) if key is not None else None
    shown = published.manifest
    folder = out or Path(f"{task}-v{shown['version']}{'-int8' if int8 else ''}")
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in (
        (registry.MODEL, published.model),
        (registry.MANIFEST, published.manifest_json),
        (registry.SIGNATURE, published.signature),
    ):
        (folder / file_name).write_bytes(data)
    note = f"verified with key {key.fingerprint()}" if manifest else "NOT verified: no public key (pass --public-key)"
    print(f"pulled {task} version {shown['version']} ({shown['quantization']}, {shown['size']} bytes) to {folder}")
    print(note)


@models_app.command("verify")
def verify(
    name: ModelArgument,
    int8: Int8Option = False,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
    public_key: PublicKeyOption = None,
) -> None:
    """Check the signature, the manifest and the model file; exits non-zero on any mismatch."""
    _, manifest = resolve(name, server, data_dir, public_key, int8, client_tls(tls, tls_ca, tls_identity))
    print(
        f"ok: {manifest.task} version {manifest.version} ({manifest.quantization}), "
        f"sha256 {manifest.sha256[:16]}…, {manifest.size} bytes, signature verified"
    )


@models_app.command("predict")
def predict(
    name: ModelArgument,
    inputs: Annotated[
        Path,
        typer.Argument(
            help="Samples as .npy, .csv (one flattened sample per row), or a data folder (docs/client-data.md): "
            "its labelled samples are scored too."
        ),
    ],
    int8: Int8Option = False,
    normalised: Annotated[
        bool, typer.Option("--normalised", help="The samples are already normalised (skip the manifest's step).")
    ] = False,
    top: Annotated[int, typer.Option(help="Labels to print per sample.")] = 3,
    server: ServerOption = None,
    data_dir: DataDirOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
    public_key: PublicKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every probability as JSON.")] = False,
) -> None:
    """Verify a model, then run it with ONNX Runtime and print each sample's likeliest labels
    (and, for a data folder's labelled samples, the model's accuracy on them)."""
    from fedge.shared.data import normalise
    from fedge.shared.onnx import runtime

    published, manifest = resolve(name, server, data_dir, public_key, int8, client_tls(tls, tls_ca, tls_identity))
    shape, wanted, labels = tuple(manifest.input["shape"]), manifest.input["normalisation"], manifest.labels
    if inputs.is_dir():
        x, y = folder_samples(inputs, shape, labels, wanted)
    else:
        x, y = read_samples(inputs, shape), None
        if not normalised and wanted:
            x = normalise(x, wanted)
    probabilities = runtime.probabilities(runtime.session(published.model), x)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y)) if y is not None else None
    if as_json:
        rows = [dict(zip(labels, map(float, p), strict=True)) for p in probabilities]
        scored = {"accuracy": accuracy, "labelled": len(y)} if y is not None else {}
        print(json.dumps({"task": manifest.task, "version": manifest.version, "predictions": rows, **scored}, indent=2))
        return
    for index, p in enumerate(probabilities):
        best = np.argsort(p)[::-1][: max(1, top)]
        print(f"{index}: " + ", ".join(f"{labels[k]} {p[k]:.3f}" for k in best))
    if accuracy is not None:
        print(f"accuracy {accuracy:.4f} on the {len(y)} labelled samples of {inputs}")


def folder_samples(
    path: Path, shape: tuple[int, ...], labels: tuple[str, ...], wanted: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray | None]:
    """A data folder's samples as the model takes them, and their class ids when the folder's
    labels are the model's (None otherwise: nothing to score against). Its meta.json says how
    they were normalised: as the manifest says, or not at all (raw: normalised here)."""
    from fedge.shared.data import normalise
    from fedge.shared.data.folder import load_local_data

    folder = load_local_data(path)
    if folder.sample_shape != shape:
        got = list(folder.sample_shape)
        raise ValueError(f"{path}: expected samples of the model's shape {list(shape)}, got {got}")
    x = folder.x
    if folder.normalisation != wanted:
        if folder.normalisation:
            raise ValueError(
                f"{path}: expected samples raw or normalised as the model's manifest says ({json.dumps(wanted)}), "
                f"got samples normalised otherwise ({json.dumps(folder.normalisation)})"
            )
        x = normalise(x, wanted)
    if folder.labels != tuple(labels):
        print(f"{path}: its labels are not the model's: predictions only, no accuracy", file=sys.stderr)
        return x, None
    return x, folder.y


def read_samples(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Samples of ``shape`` from .npy (N, *shape) or one sample, or from .csv rows of prod(shape) numbers."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix not in (".npy", ".csv"):
        raise ValueError(f"{path}: expected a .npy or .csv file, got {path.suffix or 'no extension'}")
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            x = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    except (ValueError, EOFError) as error:  # numpy's reason, e.g. a word where a number should be
        raise ValueError(f"{path}: {error}") from None
    if path.suffix == ".csv":
        size = int(np.prod(shape))
        if x.shape[1] != size:
            raise ValueError(f"{path}: expected rows of {size} numbers (one sample of shape {shape}), got {x.shape[1]}")
        x = x.reshape(len(x), *shape)
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{path}: expected samples of shape (N, {', '.join(map(str, shape))}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: expected finite numbers, got NaN or Inf")
    return x.astype(np.float32)
