"""Samples from the device's own code: ``fedge client --reader MODULE:FUNCTION``.

For data that does not live in a data folder: a database, a serial log, a sensor's own API.
FUNCTION takes no arguments and returns ``(x, y)``: x the samples, float32 or float64 of shape
(N, *sample_shape), channels last and already normalised; y their class ids, N integers. MODULE
is an importable module or the path of a ``.py`` file. The agent calls it at start and again
before each round; what it returns replaces the samples when it differs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedge.shared.data.folder import LocalData, LocalDataError


@dataclass
class Reader:
    """The device's function, and the samples it returned last."""

    spec: str
    function: Callable[[], Any]
    data: LocalData

    @classmethod
    def open(cls, spec: str) -> Reader:
        function = load_function(spec)
        return cls(spec, function, samples(spec, function))

    def refresh(self) -> LocalData | None:
        """What the function returns now if it differs from last time, else None (LocalDataError
        if it fails: the samples returned before stay)."""
        fresh = samples(self.spec, self.function)
        if np.array_equal(fresh.x, self.data.x) and np.array_equal(fresh.y, self.data.y):
            return None
        self.data = fresh
        return fresh


def load_function(spec: str) -> Callable[[], Any]:
    """MODULE:FUNCTION, MODULE a module name or a .py file."""
    try:
        function = load_attribute(spec)
    except ValueError as error:
        raise LocalDataError(f"reader {error}") from None
    if not callable(function):
        module_name, _, name = spec.rpartition(":")
        raise LocalDataError(f"reader {spec!r}: expected a function {name} in {module_name}, got {function!r}")
    return function


def load_attribute(spec: str) -> Any:
    """What MODULE:NAME names, MODULE a module name or the path of a .py file (ValueError: why not)."""
    module_name, _, name = spec.rpartition(":")
    if not module_name or not name.isidentifier():
        raise ValueError(f"{spec!r}: expected MODULE:NAME (e.g. my_sensor:samples or reader.py:samples)")
    try:
        module = _load_file(Path(module_name)) if module_name.endswith(".py") else importlib.import_module(module_name)
    except Exception as error:  # the device's code: any failure to load it is reported the same way
        raise ValueError(f"{spec!r}: cannot load {module_name}: {type(error).__name__}: {error}") from error
    if not hasattr(module, name):
        raise ValueError(f"{spec!r}: {module_name} has no {name}")
    return getattr(module, name)


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    spec = importlib.util.spec_from_file_location(f"fedge_reader_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses and pickle look the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def samples(spec: str, function: Callable[[], Any]) -> LocalData:
    """The function's (x, y), checked: LocalDataError names the reader and what was wrong."""
    try:
        returned = function()
    except Exception as error:  # the device's code: a failure is its own, reported and retried
        raise LocalDataError(f"reader {spec!r} failed: {type(error).__name__}: {error}") from error
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise LocalDataError(f"reader {spec!r}: expected a tuple (x, y), got {type(returned).__name__}")
    x, y = (np.asarray(part) for part in returned)
    if x.dtype not in (np.float32, np.float64) or x.ndim < 2:
        raise LocalDataError(
            f"reader {spec!r}: expected x float32 or float64 of shape (N, ...), got {x.dtype} {x.shape}"
        )
    if y.dtype.kind not in "iu" or y.shape != (len(x),):
        raise LocalDataError(f"reader {spec!r}: expected y {len(x)} integers, got {y.dtype} {y.shape}")
    if not len(y):
        raise LocalDataError(f"reader {spec!r}: expected at least one sample, got 0")
    if not np.isfinite(x).all():
        raise LocalDataError(f"reader {spec!r}: expected finite samples, got NaN or infinity")
    if y.min() < 0:
        raise LocalDataError(f"reader {spec!r}: expected class ids >= 0, got {int(y.min())}")
    layout = "NHWC" if x.ndim == 4 else "NWC"
    return LocalData(x.astype(np.float32), y.astype(np.int64), (), tuple(x.shape[1:]), spec, {}, (), layout)
