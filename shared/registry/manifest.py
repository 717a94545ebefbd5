"""A published model's manifest, and the canonical JSON that the coordinator signs.

Canonical JSON is the one encoding that gets signed: keys sorted, no whitespace, UTF-8 text
(never ``\\u`` escapes), floats in Python's shortest round-trip form, no NaN or Infinity::

    {"created":"2025-05-01T12:00:00Z","format":"onnx","input":{"dtype":"float32","layout":"NWC",
     "normalisation":{...},"shape":[50,6]},"labels":["sit","walk"],"metrics":{"accuracy":0.91},
     "name":"watch-har","quantization":"fp32","round":3,"sha256":"…","size":48213,"task":"watch-har","version":3}

A verifier checks the signature over the bytes it received and never re-serialises them.
`Manifest.from_json` refuses bytes that are not already canonical, so a signed manifest has
exactly one reading: no duplicate keys, no second spelling of a value.

Every rule is checked when a Manifest is built; a broken one raises ManifestError (a ValueError)
saying "expected X, got Y".
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

FIELDS = (
    "name",
    "version",
    "task",
    "round",
    "input",
    "labels",
    "metrics",
    "sha256",
    "size",
    "created",
    "format",
    "quantization",
)
INPUT_KEYS = ("shape", "dtype", "layout", "normalisation")
NORMALISATION_KEYS = ("method", "channels", "mean", "std")
LAYOUTS = {"NC": 1, "NWC": 2, "NHWC": 3}  # layout -> dimensions of one sample, the batch axis N not listed
DTYPES = ("float32",)
METHODS = ("standardise", "scale")
FORMATS = ("onnx",)
QUANTIZATIONS = ("fp32", "int8")
MAX_BYTES = 1 << 20  # a manifest is a few kilobytes; anything near this is not one

TASK_NAME = re.compile(r"[a-z0-9-]+")  # the rule of a task's name in fedge.toml
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


class ManifestError(ValueError):
    """A manifest breaks the format; the message names the field, what was expected and what came."""


@dataclass(frozen=True)
class Manifest:
    """What a device needs to trust and run a published model; `to_json()` is what gets signed."""

    name: str
    version: int
    task: str
    round: int
    input: dict[str, Any]  # {"shape": one sample's shape, "dtype", "layout", "normalisation"}
    labels: tuple[str, ...]  # class id k is labels[k]
    metrics: dict[str, float]
    sha256: str  # of the model file, lowercase hex
    size: int  # of the model file, in bytes
    created: str  # RFC 3339 in UTC, e.g. 2025-05-01T12:00:00Z
    format: str = "onnx"
    quantization: str = "fp32"

    def __post_init__(self) -> None:
        _check_scalars(self)
        object.__setattr__(self, "input", _checked_input(self.input))
        object.__setattr__(self, "labels", _checked_labels(self.labels))
        object.__setattr__(self, "metrics", _checked_metrics(self.metrics))
        try:
            self.to_json()
        except UnicodeEncodeError as error:
            _fail("text encodable as UTF-8", f"{error.object[error.start : error.end]!r} (a lone surrogate)")

    @classmethod
    def for_bytes(cls, model: bytes, **fields: Any) -> Manifest:
        """The manifest of a model held in memory; `created` defaults to now."""
        model = bytes(model)
        fields.setdefault("created", rfc3339(datetime.now(UTC)))
        return cls(sha256=hashlib.sha256(model).hexdigest(), size=len(model), **fields)

    @classmethod
    def for_file(cls, path: Path, **fields: Any) -> Manifest:
        """The manifest of the model file at `path`; `created` defaults to now."""
        return cls.for_bytes(Path(path).read_bytes(), **fields)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """The manifest in canonical JSON bytes, every field checked."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"expected the manifest as bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_BYTES:
            _fail(f"a manifest of at most {MAX_BYTES} bytes", f"{len(data)} bytes")
        manifest = cls(**_parse_object(data))
        canonical = manifest.to_json()
        if canonical != data:
            offset = next((i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b), len(canonical))
            _fail("canonical JSON (sorted keys, no whitespace, UTF-8)", f"bytes that differ from it at offset {offset}")
        return manifest

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON values (a fresh copy)."""
        fields = {name: getattr(self, name) for name in FIELDS}
        return json.loads(json.dumps(fields))

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no whitespace, UTF-8. These are the bytes that are signed."""
        fields = {name: getattr(self, name) for name in FIELDS}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")


def rfc3339(when: datetime) -> str:
    """A moment as a manifest's `created` string: UTC, whole seconds, a Z suffix."""
    if when.tzinfo is None:
        raise ValueError("expected an aware datetime, got a naive one (its time zone is unknown)")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_object(data: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError as error:
        _fail("UTF-8 text", f"an undecodable byte at offset {error.start}")
    except json.JSONDecodeError as error:
        _fail("JSON", f"{error.msg} at offset {error.pos}")
    except ManifestError:
        raise
    except ValueError as error:  # an integer beyond Python's digit limit
        _fail("JSON Python can read", str(error))
    except RecursionError:
        _fail("JSON nested a few levels deep", "nesting too deep to read")
    if not isinstance(raw, dict):
        _fail("a JSON object", type(raw).__name__)
    missing = [key for key in FIELDS if key not in raw]
    unknown = sorted(set(raw) - set(FIELDS))
    if missing or unknown:
        got = "; ".join(part for part in (_list("no", missing), _list("unknown", unknown)) if part)
        _fail(f"the keys {', '.join(FIELDS)}", got)
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            _fail("each key once in an object", f"{key!r} twice")
        seen[key] = value
    return seen


def _no_constant(name: str) -> NoReturn:
    _fail("finite numbers", name)


def _check_scalars(manifest: Manifest) -> None:
    rules = (
        ("name", _is_text(manifest.name), "a non-empty string"),
        ("version", _is_int(manifest.version) and manifest.version >= 1, "an integer >= 1"),
        ("task", isinstance(manifest.task, str) and TASK_NAME.fullmatch(manifest.task), "a task name of a-z, 0-9, '-'"),
        ("round", _is_int(manifest.round) and manifest.round >= 1, "an integer >= 1"),
        ("sha256", isinstance(manifest.sha256, str) and SHA256_HEX.fullmatch(manifest.sha256), "64 lowercase hex"),
        ("size", _is_int(manifest.size) and manifest.size >= 1, "a size in bytes >= 1"),
        ("created", _is_rfc3339_utc(manifest.created), "an RFC 3339 UTC time like 2025-05-01T12:00:00Z"),
        ("format", manifest.format in FORMATS, f"one of {', '.join(FORMATS)}"),
        ("quantization", manifest.quantization in QUANTIZATIONS, f"one of {', '.join(QUANTIZATIONS)}"),
    )
    for name, ok, rule in rules:
        if not ok:
            _fail(f"{name} as {rule}", _show(getattr(manifest, name)))


def _checked_input(value: Any) -> dict[str, Any]:
    _check_keys("input", value, INPUT_KEYS)
    layout, shape, dtype = value["layout"], value["shape"], value["dtype"]
    if layout not in LAYOUTS:
        _fail(f"input.layout among {', '.join(LAYOUTS)}", _show(layout))
    rank = LAYOUTS[layout]
    if not isinstance(shape, list | tuple) or len(shape) != rank or not all(_is_int(n) and n > 0 for n in shape):
        _fail(f"input.shape as {rank} positive sizes for layout {layout} (one sample, no batch axis)", _show(shape))
    if dtype not in DTYPES:
        _fail(f"input.dtype among {', '.join(DTYPES)}", _show(dtype))
    normalisation = _checked_normalisation(value["normalisation"], shape[-1])
    return {"shape": list(shape), "dtype": dtype, "layout": layout, "normalisation": normalisation}


def _checked_normalisation(value: Any, channels: int) -> dict[str, Any]:
    """{} (inputs used as they are) or Splits.normalisation: (raw - mean) / std per channel."""
    if value == {}:
        return {}
    _check_keys("input.normalisation", value, NORMALISATION_KEYS)
    if value["method"] not in METHODS:
        _fail(f"input.normalisation.method among {', '.join(METHODS)}", _show(value["method"]))
    names = value["channels"]
    if not isinstance(names, list | tuple) or len(names) != channels or not all(_is_text(n) for n in names):
        _fail(f"input.normalisation.channels as {channels} channel names", _show(names))
    for key, positive in (("mean", False), ("std", True)):
        numbers = value[key]
        rule = f"{channels} finite numbers" + (" > 0" if positive else "")
        if not isinstance(numbers, list | tuple) or len(numbers) != channels:
            _fail(f"input.normalisation.{key} as {rule}", _show(numbers))
        if not all(_is_number(v) and (v > 0 or not positive) for v in numbers):
            _fail(f"input.normalisation.{key} as {rule}", _show(numbers))
    floats = {key: [float(v) for v in value[key]] for key in ("mean", "std")}
    return {"method": value["method"], "channels": list(names), **floats}


def _checked_labels(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value or not all(_is_text(label) for label in value):
        _fail("labels as a non-empty list of names", _show(value))
    if len(set(value)) != len(value):
        repeated = sorted({label for label in value if value.count(label) > 1})
        _fail("distinct labels", f"{', '.join(map(repr, repeated))} repeated")
    return tuple(value)


def _checked_metrics(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        _fail("metrics as a JSON object of names to numbers", _show(value))
    for name, number in value.items():
        if not (_is_text(name) and name.isascii()):
            _fail("metric names as non-empty ASCII strings", _show(name))
        if not _is_number(number):
            _fail(f"metrics[{name!r}] as a finite number", _show(number))
    return {name: float(number) for name, number in value.items()}


def _check_keys(where: str, value: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        _fail(f"{where} as a JSON object", _show(value))
    missing = [key for key in keys if key not in value]
    unknown = sorted(str(key) for key in set(value) - set(keys))
    if missing or unknown:
        got = "; ".join(part for part in (_list("no", missing), _list("unknown", unknown)) if part)
        _fail(f"{where} with the keys {', '.join(keys)}", got)


def _is_rfc3339_utc(value: Any) -> bool:
    if not isinstance(value, str) or not RFC3339_UTC.fullmatch(value):
        return False
    try:
        datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:  # 2025-02-30 and 24:00:00 have the right shape but are no time
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _list(prefix: str, names: list[str]) -> str:
    return f"{prefix} {', '.join(names)}" if names else ""


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fail(expected: str, got: str) -> NoReturn:
    raise ManifestError(f"expected {expected}, got {got}")
