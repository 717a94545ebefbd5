"""The coordinator's configuration: one TOML file, overridable by environment and flags.

    [server]                   host, port, http_port, data_dir, max_message_mb, chunk_kb,
                               tls_cert, tls_key                                           → ServerSettings
    [[task]]                   one table per federated training job                        → TaskConfig
    [task.strategy_options]    numeric parameters of the task's strategy
    [task.training]            what each client does per round                             → TrainConfig

Precedence, lowest first: the built-in defaults (the template ``fedge init`` writes), the file,
the environment (FEDGE_HOST, FEDGE_PORT, FEDGE_DATA_DIR, FEDGE_HTTP_PORT, FEDGE_TLS_CERT,
FEDGE_TLS_KEY), explicit overrides
(command-line flags).

Errors: the settings classes check their own values and raise `FieldError` naming the key;
the loader checks keys and types and turns every mistake into one `ConfigError` naming the file
and, where it can be found, the line. tomllib reports no positions for values, so `key_lines`
finds them in the text. Every key is described in docs/configuration.md.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from fedge.server.strategies import STRATEGIES, Strategy, make_strategy
from fedge.shared.data import DATASETS
from fedge.shared.data.folder import META as FOLDER_META
from fedge.shared.models import EXTERNAL, ZOO, external_spec, read_parameters
from fedge.shared.tls import ServerTls
from fedge.shared.training import TrainConfig, cosine_lr

FILENAME = "fedge.toml"
ENVIRONMENT = {
    "host": "FEDGE_HOST",
    "port": "FEDGE_PORT",
    "data_dir": "FEDGE_DATA_DIR",
    "http_port": "FEDGE_HTTP_PORT",
    "tls_cert": "FEDGE_TLS_CERT",
    "tls_key": "FEDGE_TLS_KEY",
    "tls_client_ca": "FEDGE_TLS_CLIENT_CA",
}
FLAGS = {
    "host": "--host",
    "port": "--port",
    "data_dir": "--data-dir",
    "http_port": "--http-port",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "tls_client_ca": "--tls-client-ca",
}
LR_SCHEDULES = ("cosine", "constant")
PUBLISH_POLICIES = ("never", "every", "best")  # docs/configuration.md: when a committed version is published
# the held-out metric "best" follows, and which way is better: the coordinator's own held-out split
# (evaluate_on), or the devices' scores of the model they received ([task.training] holdout)
PUBLISH_METRICS = {"accuracy": max, "loss": min, "eval_accuracy": max, "eval_loss": min}
DEVICE_METRICS = ("eval_accuracy", "eval_loss")
TASK_NAME = re.compile(r"[a-z0-9-]+")

KeyPath = tuple[str | int, ...]  # where a value sits in the document, e.g. ("task", 0, "rounds")


class ConfigError(ValueError):
    """A mistake in the configuration, in one line that names the file and, where known, the line."""


class FieldError(ValueError):
    """A settings object refused a value; ``key`` (dotted, e.g. ``strategy_options.beta1``) says which."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _require(owner: str, key: str, ok: bool, rule: str, value: Any) -> None:
    if not ok:
        shown = list(value) if isinstance(value, tuple) else value  # as written in TOML: [0, 6]
        raise FieldError(key, f"{owner}: expected {key} {rule}, got {shown!r}")


@dataclass(frozen=True)
class ServerSettings:
    """How the coordinator listens and where it keeps its state."""

    host: str = "127.0.0.1"
    port: int = 7070
    http_port: int = 8080  # the web gateway (browsers, /healthz); 0: none
    data_dir: Path = Path("fedge-data")
    max_message_mb: int = 16
    chunk_kb: int = 512
    tls_cert: str = ""  # PEM certificate (chain) both ports serve; "" with tls_key "": plaintext
    tls_key: str = ""
    tls_client_ca: str = ""  # mutual TLS: gRPC clients must present a certificate this CA issued

    def __post_init__(self) -> None:
        _require("server", "host", bool(self.host), "to name an interface", self.host)
        _require("server", "port", 0 <= self.port <= 65535, "in 0..65535", self.port)
        _require("server", "http_port", 0 <= self.http_port <= 65535, "in 0..65535 (0: no gateway)", self.http_port)
        _require("server", "max_message_mb", self.max_message_mb >= 1, ">= 1", self.max_message_mb)
        limit = self.max_message_mb * 1024
        _require(
            "server", "chunk_kb", 1 <= self.chunk_kb < limit, f"in 1..{limit - 1} (below max_message_mb)", self.chunk_kb
        )
        for key, other in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
            value = getattr(self, key)
            _require("server", key, bool(value) or not getattr(self, other), f"to be set with {other}", value)
        ok = bool(self.tls_cert) or not self.tls_client_ca
        _require("server", "tls_client_ca", ok, "only with tls_cert and tls_key: mutual TLS is TLS", self.tls_client_ca)

    def tls(self) -> ServerTls | None:
        """The loaded certificate and key, or None for plaintext; a bad file raises TlsError here."""
        return ServerTls.load(self.tls_cert, self.tls_key, self.tls_client_ca or None) if self.tls_cert else None


@dataclass(frozen=True)
class TaskConfig:
    """One federated training job: the model, its labels, the round policy and the clients' training."""

    name: str
    model: str
    input_shape: tuple[int, ...]
    labels: tuple[str, ...]
    rounds: int = 30
    clients_per_round: int = 3
    min_clients: int = 2
    over_selection: float = 1.3
    select_timeout_s: float = 30.0
    train_deadline_s: float = 120.0
    strategy: str = "fedavg"
    seed: int = 0
    lr_schedule: str = "cosine"
    evaluate_on: str = ""
    secagg: bool = False
    secagg_neighbours: int = 0
    secagg_threshold: int = 0
    secagg_clip: float = 4.0
    secagg_timeout_s: float = 30.0
    dp_clip: float = 0.0
    dp_noise: float = 0.0
    dp_delta: float = 1e-5
    publish: str = "never"
    publish_every: int = 5
    publish_metric: str = "accuracy"
    publish_int8: bool = False
    init_from: str = ""
    initial_weights: str = ""  # model = "external": an .npz of the clients' model's parameters
    train_layers: tuple[str, ...] = ()
    strategy_options: dict[str, float] = field(default_factory=dict)
    training: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "strategy_options", dict(self.strategy_options))
        self._check_values()
        self._check_strategy()
        self._check_model()

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def cohort_size(self) -> int:
        """Clients selected per round. Rounded first: 50 × 1.1 is 55.00000000000001 in floating point."""
        return math.ceil(round(self.clients_per_round * self.over_selection, 9))

    def lr_at(self, progress: float) -> float:
        """The clients' learning rate after ``progress`` (0..1) of the task's rounds."""
        if self.lr_schedule == "constant":
            return self.training.lr
        return cosine_lr(self.training.lr, progress)

    @property
    def published_by_devices(self) -> bool:
        """Whether "best" follows the devices' scores, which round N reports for version N − 1."""
        return self.publish == "best" and self.publish_metric in DEVICE_METRICS

    @property
    def scoring_round(self) -> bool:
        """Whether the task ends with a round in which devices only score the last version: any
        task whose devices keep samples aside. Round N scores version N − 1, so without it the
        last version would have no devices' score (and, published by them, never be published)."""
        return self.training.holdout > 0

    def make_strategy(self) -> Strategy:
        """A fresh strategy object: strategies keep state (momentum, moments) across rounds."""
        return make_strategy(self.strategy, **self.strategy_options)

    def _check_values(self) -> None:
        labels, shape = self.labels, self.input_shape
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        min_rule = f"in 1..clients_per_round ({self.clients_per_round})"
        for key, ok, rule in (
            ("name", isinstance(self.name, str) and TASK_NAME.fullmatch(self.name), "of a-z, 0-9 and '-'"),
            ("model", self.model in ZOO or self.external, f"one of {', '.join(ZOO)}, or 'external'"),
            (
                "input_shape",
                shape and all(_is_int(d) and d > 0 for d in shape),
                "to be a non-empty array of positive integers",
            ),
            (
                "labels",
                labels and all(isinstance(x, str) and x for x in labels),
                "to be a non-empty array of non-empty strings",
            ),
            ("labels", not repeated, f"to be unique ({', '.join(map(repr, repeated))} repeated)"),
            ("rounds", self.rounds >= 1, ">= 1"),
            ("clients_per_round", self.clients_per_round >= 1, ">= 1"),
            ("min_clients", 1 <= self.min_clients <= self.clients_per_round, min_rule),
            ("over_selection", self.over_selection >= 1, ">= 1"),
            ("select_timeout_s", self.select_timeout_s > 0, "> 0"),
            ("train_deadline_s", self.train_deadline_s > 0, "> 0"),
            ("seed", self.seed >= 0, ">= 0"),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, "'cosine' or 'constant'"),
            (
                "evaluate_on",
                self.evaluate_on in ("", *DATASETS) or (Path(self.evaluate_on) / FOLDER_META).is_file(),
                f"'', one of {', '.join(DATASETS)}, or a data folder with a {FOLDER_META} (docs/client-data.md)",
            ),
            ("secagg_neighbours", self.secagg_neighbours >= 0, ">= 0 (0: automatic)"),
            ("secagg_threshold", self.secagg_threshold >= 0, ">= 0 (0: automatic)"),
            (
                "clients_per_round",
                not self.secagg or self.cohort_size >= 3,
                ">= 3 with secagg = true (with two, each client learns the other's update from the sum)",
            ),
            ("secagg_clip", self.secagg_clip > 0, "> 0"),
            ("secagg_timeout_s", self.secagg_timeout_s > 0, "> 0"),
            ("dp_clip", self.dp_clip >= 0, ">= 0 (0: no differential privacy)"),
            (
                "dp_noise",
                self.dp_noise >= 0 and (self.dp_noise == 0 or self.dp_clip > 0),
                ">= 0, and needs dp_clip > 0",
            ),
            ("dp_delta", 0 < self.dp_delta < 1, "in (0, 1)"),
            ("publish", self.publish in PUBLISH_POLICIES, f"one of {', '.join(PUBLISH_POLICIES)}"),
            ("publish_every", self.publish_every >= 1, ">= 1"),
            ("publish_metric", self.publish_metric in PUBLISH_METRICS, f"one of {', '.join(PUBLISH_METRICS)}"),
            (
                "publish_metric",
                self.publish_metric not in DEVICE_METRICS or self.training.holdout > 0,
                "to be accuracy or loss unless [task.training] holdout > 0 (eval_ metrics are the devices' scores)",
            ),
            ("train_layers", all(isinstance(x, str) and x for x in self.train_layers), "to name layers"),
        ):
            _require(f"task {self.name!r}", key, bool(ok), rule, getattr(self, key))
        self._check_external()

    @property
    def external(self) -> bool:
        """The clients' own model (a Flower NumPyClient's), known here by its parameters only."""
        return self.model == EXTERNAL

    def _check_external(self) -> None:
        owner, external = f"task {self.name!r}", self.external
        rule = "to name an .npz of the parameters when model = 'external', and only then"
        _require(owner, "initial_weights", bool(self.initial_weights) == external, rule, self.initial_weights)
        if not external:
            return
        cannot = "with model = 'external': the coordinator cannot run the clients' model"
        _require(owner, "evaluate_on", not self.evaluate_on, f"'' {cannot}", self.evaluate_on)
        _require(owner, "publish", self.publish == "never", f"'never' {cannot}", self.publish)
        _require(owner, "init_from", not self.init_from, f"'' {cannot}", self.init_from)
        _require(owner, "train_layers", not self.train_layers, f"to be empty {cannot}", self.train_layers)
        try:
            read_parameters(self.initial_weights)
        except ValueError as error:
            raise FieldError("initial_weights", f"{owner}: {error}") from None

    def model_spec(self) -> dict[str, Any]:
        """What devices build: the zoo's layers, or an external model's parameters."""
        if self.external:
            return external_spec(*read_parameters(self.initial_weights))
        from fedge.shared.models import model_spec

        return model_spec(self.model, self.input_shape, self.num_classes)

    def _check_model(self) -> None:
        """The zoo's model must take samples of input_shape (a window too short for its kernels
        stops the start here, naming the key), and train_layers name its layers."""
        if self.external:
            return
        from fedge.shared.models import model_spec
        from fedge.shared.nn import Model

        try:
            names = Model(model_spec(self.model, self.input_shape, self.num_classes)).parameter_names
        except ValueError as error:
            raise FieldError(
                "input_shape",
                f"task {self.name!r}: model {self.model} cannot take samples of shape {list(self.input_shape)} "
                f"({error}); choose another model (mlp takes any shape)",
            ) from None
        layers = list(dict.fromkeys(name.split("/")[0] for name in names))
        unknown = [layer for layer in self.train_layers if layer not in layers]
        rule = f"to name layers of {self.model} with parameters ({', '.join(layers)})"
        _require(f"task {self.name!r}", "train_layers", not unknown, rule, self.train_layers)

    def _check_strategy(self) -> None:
        owner = f"task {self.name!r}"
        _require(owner, "strategy", self.strategy in STRATEGIES, f"one of {', '.join(STRATEGIES)}", self.strategy)
        in_clear = not STRATEGIES[self.strategy].secagg_compatible
        clear = ", ".join(name for name, cls in STRATEGIES.items() if not cls.secagg_compatible)
        rule = f"one that works on a sum (not {clear}) when secagg = true"
        _require(owner, "strategy", not (self.secagg and in_clear), rule, self.strategy)
        try:
            self.make_strategy()
        except (ValueError, TypeError) as error:
            culprit = _culprit(lambda **one: make_strategy(self.strategy, **one), self.strategy_options)
            key = f"strategy_options.{culprit}" if culprit else "strategy_options"
            raise FieldError(key, f"{owner}: strategy_options: {error}") from None


@dataclass(frozen=True)
class Config:
    server: ServerSettings
    tasks: tuple[TaskConfig, ...]
    path: Path | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _culprit(build: Callable[..., object], options: Mapping[str, Any]) -> str | None:
    """The first option that is refused on its own, to point at its line."""
    for key, value in options.items():
        try:
            build(**{key: value})
        except (ValueError, TypeError):
            return key
    return None


def template_text() -> str:
    """The commented fedge.toml that ``fedge init`` writes; its values are the built-in defaults."""
    return resources.files("fedge.server").joinpath(FILENAME).read_text(encoding="utf-8")


def write_template(folder: Path, force: bool = False) -> Path:
    """Write fedge.toml into ``folder`` (created if missing); an existing one is kept unless ``force``."""
    target = folder / FILENAME
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file: expected a folder to write {FILENAME} into")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("w" if force else "x", encoding="utf-8") as out:
            out.write(template_text())
    except FileExistsError:
        raise ConfigError(f"{target} already exists: not overwriting it (fedge init --force replaces it)") from None
    except OSError as error:
        raise ConfigError(f"{target}: cannot write it: {error.strerror}") from None
    return target


def load_config(
    path: Path | None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Config:
    """Read, check and resolve a configuration; with ``path`` None, the built-in defaults."""
    if path is None:
        loader = _Loader(f"{FILENAME} (built-in defaults)", template_text(), folder=None)
    else:
        loader = _Loader(str(path), _read(path), folder=path.parent)
    document = loader.parse()
    unknown = sorted(set(document) - {"server", "task"})
    if unknown:
        raise loader.unknown_key((unknown[0],), "", ["server", "task"])
    server = loader.server(document.get("server", {}), environ, overrides or {})
    return Config(server, loader.tasks(document.get("task", [])), path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (fedge init writes one)") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: expected UTF-8 text, got byte {error.object[error.start]:#04x}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror}") from None


class _Loader:
    """Checks one document against the settings classes; every error it raises is located."""

    def __init__(self, source: str, text: str, folder: Path | None) -> None:
        self.source, self.text, self.folder = source, text, folder
        self.lines = key_lines(text)

    def parse(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as error:
            message = str(error)
            if where := re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, re.DOTALL):
                raise ConfigError(f"{self.source} line {where[2]}: {where[1]} (column {where[3]})") from None
            raise ConfigError(f"{self.source}: {message}") from None

    def error(self, path: KeyPath, message: str) -> ConfigError:
        while path and path not in self.lines:
            path = path[:-1]
        return ConfigError(f"{self.source} line {self.lines[path]}: {message}" if path else f"{self.source}: {message}")

    def unknown_key(self, path: KeyPath, owner: str, known: list[str]) -> ConfigError:
        key = str(path[-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        prefix = f"{owner}: " if owner else ""
        return self.error(path, f"{prefix}unknown key {key!r}{hint}; known keys: {', '.join(known)}")

    def table(self, value: Any, path: KeyPath, owner: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"{owner}: expected a table, got {_describe(value)}")
        return value

    def arguments(self, cls: type, table: Mapping[str, Any], path: KeyPath, owner: str) -> dict[str, Any]:
        """Keyword arguments for ``cls`` from a TOML table: known keys, right types, required ones present."""
        hints = typing.get_type_hints(cls)
        known = [f.name for f in fields(cls) if f.init]
        for key in table:
            if key not in known:
                raise self.unknown_key((*path, key), owner, known)
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [key for key in required if key not in table]
        if missing:
            raise self.error(path, f"{owner}: missing required key(s) {', '.join(missing)}")
        arguments = {}
        for key, value in table.items():
            hint = hints[key]
            if typing.get_origin(hint) is dict and isinstance(value, dict):
                for name, item in value.items():
                    self.check_type(item, typing.get_args(hint)[1], (*path, key, name), f"{key}.{name}", owner)
            self.check_type(value, hint, (*path, key), key, owner)
            arguments[key] = _convert(value, hint)
        return arguments

    def check_type(self, value: Any, hint: Any, path: KeyPath, name: str, owner: str) -> None:
        if not _accepts(value, hint):
            raise self.error(path, f"{owner}: expected {name} to be {_kind(hint)}, got {_describe(value)}")

    def server(self, value: Any, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> ServerSettings:
        table = self.table(value, ("server",), "server")
        arguments = self.arguments(ServerSettings, table, ("server",), "server")
        if self.folder is not None:  # relative to the file's folder, not to wherever the daemon starts
            arguments["data_dir"] = self.folder / arguments.get("data_dir", ServerSettings().data_dir)
            for key in ("tls_cert", "tls_key", "tls_client_ca"):
                if arguments.get(key):
                    arguments[key] = str(self.folder / Path(arguments[key]).expanduser())
        settings = {
            key: (environ[name], f"environment {name}") for key, name in ENVIRONMENT.items() if environ.get(name)
        }
        for key, setting in overrides.items():
            if key not in FLAGS:
                raise ConfigError(f"{self.source}: cannot override {key!r}; expected one of {', '.join(FLAGS)}")
            if setting is not None:
                settings[key] = (setting, FLAGS[key])
        for key, (setting, origin) in settings.items():
            arguments[key] = self.setting(key, setting, origin)
        try:
            return ServerSettings(**arguments)
        except FieldError as error:
            if error.key in settings:
                raise ConfigError(f"{self.source}: {error} (set by {settings[error.key][1]})") from None
            raise self.error(("server", error.key), str(error)) from None

    def setting(self, key: str, value: Any, origin: str) -> Any:
        """A value from the environment or a flag: text, or already the field's type."""
        hint = typing.get_type_hints(ServerSettings)[key]
        if hint is int and isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            value = int(value)
        if not _accepts(value, hint):
            got = _describe(value)
            raise ConfigError(f"{self.source}: server: expected {key} to be {_kind(hint)}, got {got} (set by {origin})")
        return _convert(value, hint)

    def tasks(self, value: Any) -> tuple[TaskConfig, ...]:
        if isinstance(value, dict):
            raise self.error(("task",), "expected [[task]] tables (double brackets, one per task), got a single [task]")
        if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
            raise self.error(("task",), f"expected [[task]] tables, got {_describe(value)}")
        if not value:
            raise ConfigError(
                f"{self.source}: no [[task]] table: expected at least one task for the coordinator to run"
            )
        tasks = tuple(self.task(table, index) for index, table in enumerate(value))
        names = [task.name for task in tasks]
        for index, name in enumerate(names):
            if name in names[:index]:
                first = names.index(name) + 1
                raise self.error(
                    ("task", index, "name"),
                    f"task {name!r}: expected a unique name, got the name of task #{first} again",
                )
        return tasks

    def task(self, table: dict[str, Any], index: int) -> TaskConfig:
        path: KeyPath = ("task", index)
        owner = f"task {table['name']!r}" if isinstance(table.get("name"), str) else f"task #{index + 1}"
        arguments = self.arguments(TaskConfig, {k: v for k, v in table.items() if k != "training"}, path, owner)
        arguments["training"] = self.training(table.get("training", {}), (*path, "training"), owner)
        paths = ["init_from", "initial_weights"] + (["evaluate_on"] if table.get("evaluate_on") not in DATASETS else [])
        for key in paths:
            if arguments.get(key) and self.folder is not None:  # like data_dir: relative to the file
                arguments[key] = str(self.folder / Path(arguments[key]).expanduser())
        try:
            return TaskConfig(**arguments)
        except FieldError as error:
            raise self.error((*path, *error.key.split(".")), str(error)) from None

    def training(self, value: Any, path: KeyPath, owner: str) -> TrainConfig:
        arguments = self.arguments(TrainConfig, self.table(value, path, owner), path, f"{owner}: training")
        try:
            return TrainConfig(**arguments)
        except ValueError as error:
            culprit = _culprit(TrainConfig, arguments)
            raise self.error((*path, culprit) if culprit else path, f"{owner}: training: {error}") from None


# --- types: what a field accepts from TOML, and how a mistake is worded -----------------------------------------

_PLURALS = {int: "integers", str: "strings", float: "numbers"}
_KINDS = {str: "a string", int: "an integer", float: "a number", Path: "a string (a path)"}


def _accepts(value: Any, hint: Any) -> bool:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return isinstance(value, list) and all(_accepts(item, arguments[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(_accepts(item, arguments[1]) for item in value.values())
    if hint is float:
        return _is_int(value) or isinstance(value, float)
    if hint is int:
        return _is_int(value)
    if hint is Path:
        return isinstance(value, str | Path)
    return isinstance(value, hint)


def _convert(value: Any, hint: Any) -> Any:
    """Arrays become tuples, integers become floats where a float is expected; dict values stay as written."""
    if typing.get_origin(hint) is tuple:
        return tuple(_convert(item, typing.get_args(hint)[0]) for item in value)
    if hint is float:
        return float(value)
    if hint is Path:
        return Path(value).expanduser()
    return value


def _kind(hint: Any) -> str:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return f"an array of {_PLURALS[arguments[0]]}"
    if origin is dict:
        return f"a table of {_PLURALS[arguments[1]]}"
    return _KINDS.get(hint, getattr(hint, "__name__", str(hint)))


def _describe(value: Any) -> str:
    """A TOML value as a user wrote it: string "ten", integer 10, array [1, "a"]."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, list):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return f"array {text if len(text) <= 60 else text[:57] + '...'}"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value}"


# --- where each key sits in the text ---------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9_-]+|\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_DOTTED = rf"(?:{_KEY})(?:\s*\.\s*(?:{_KEY}))*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?")
_ASSIGNMENT = re.compile(rf"\s*({_DOTTED})\s*=")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")


def key_lines(text: str) -> dict[KeyPath, int]:
    """The 1-based line of each table header and key of a valid TOML text, by path.

    Arrays of tables are numbered: the second ``[[task]]``'s ``rounds`` is ``("task", 1, "rounds")``.
    Lines inside a multi-line array, inline table or string are skipped.
    """
    lines: dict[KeyPath, int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: KeyPath = ()
    depth, in_string = 0, False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string or depth > 0:
            depth += 0 if in_string else _balance(line)
        elif header := _HEADER.fullmatch(line):
            names = _names(header[2])
            if header[1] == "[[":
                arrays[names] = arrays.get(names, 0) + 1
            table = _resolve(names, arrays)
            _record(lines, table, number)
        elif assignment := _ASSIGNMENT.match(line):
            _record(lines, (*table, *_names(assignment[1])), number)
            depth = _balance(line[assignment.end() :])
        in_string ^= (line.count('"""') + line.count("'''")) % 2 == 1
    return lines


def _names(dotted: str) -> tuple[str, ...]:
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in re.findall(_KEY, dotted))


def _resolve(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> KeyPath:
    """A header's path with the current index of each array of tables on the way, e.g. ("task", 0, "training")."""
    path: KeyPath = ()
    for end in range(1, len(names) + 1):
        path = (*path, names[end - 1])
        if names[:end] in arrays:
            path = (*path, arrays[names[:end]] - 1)
    return path


def _record(lines: dict[KeyPath, int], path: KeyPath, number: int) -> None:
    for end in range(1, len(path) + 1):
        lines.setdefault(path[:end], number)


def _balance(code: str) -> int:
    """Brackets and braces opened minus closed, outside strings and comments."""
    code = _STRING.sub("", code).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


def to_toml(server: ServerSettings, tasks: Sequence[TaskConfig]) -> str:
    """The configuration as fedge.toml text, so a generated setup (simulations, tests) starts a
    daemon exactly as an operator's file would."""
    lines = ["[server]", *_toml_items(_fields(server))]
    for task in tasks:
        values = _fields(task)
        options, training = values.pop("strategy_options"), _fields(values.pop("training"))
        lines += ["", "[[task]]", *_toml_items(values)]
        lines += ["[task.strategy_options]", *_toml_items(options)]
        lines += ["[task.training]", *_toml_items(training)]
    return "\n".join(lines) + "\n"


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _toml_items(values: Mapping[str, Any]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in values.items()]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string
