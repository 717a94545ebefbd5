"""A model that lives in the clients' own code, a Flower ``NumPyClient``'s for one: the
coordinator knows only its parameters, their names, shapes and first values, from an .npz file.

Its spec, what devices receive instead of layers, is ``{"external": [{"name", "shape", "dtype"},
…]}``. A fedge trainer cannot build it and sits such rounds out; ``fedge client --flower`` trains
it with the client's own code (client/flower.py).
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

EXTERNAL = "external"


def read_parameters(path: Path | str) -> tuple[list[str], list[np.ndarray]]:
    """The arrays of an .npz in the order they were saved (``np.savez(path, *weights)`` names them
    arr_0, arr_1, …): float32, finite, at least one. ValueError says what is wrong.

    A start asks three times (the config's check, the task's spec, its first weights): the file
    is read and checked once while its size and modification time stay the same, and the arrays
    come back read-only, shared by every caller."""
    try:
        stat = Path(path).stat()
    except OSError as error:
        raise ValueError(f"{path}: expected an .npz of the model's parameters ({error})") from None
    names, arrays = _read(str(path), stat.st_size, stat.st_mtime_ns)
    return list(names), list(arrays)


@functools.lru_cache(maxsize=4)
def _read(path: str, size: int, mtime_ns: int) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names, arrays = list(archive.files), [archive[name] for name in archive.files]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: expected an .npz of the model's parameters ({error})") from None
    if not arrays:
        raise ValueError(f"{path}: expected at least one array of parameters, got none")
    for name, array in zip(names, arrays, strict=True):
        if array.dtype != np.float32 or array.size == 0:
            raise ValueError(f"{path}: expected non-empty float32 arrays, got {name} {array.dtype} {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: expected finite parameters, got NaN or infinity in {name}")
        array.setflags(write=False)
    return tuple(names), tuple(arrays)


def external_spec(names: list[str], arrays: list[np.ndarray]) -> dict[str, Any]:
    parameters = zip(names, arrays, strict=True)
    return {EXTERNAL: [{"name": name, "shape": list(a.shape), "dtype": str(a.dtype)} for name, a in parameters]}


def is_external(spec: Mapping[str, Any]) -> bool:
    return EXTERNAL in spec
