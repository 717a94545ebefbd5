"""Reader for gzipped IDX files, the format (Fashion-)MNIST is distributed in.

Layout (big-endian)::

    0x00 0x00 <dtype code> <ndim> | ndim × uint32 sizes | prod(sizes) items

Only unsigned bytes (code 0x08) are read; that is all (Fashion-)MNIST uses.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The array in `path`, checked against its header so that a corrupt or truncated file
    fails here with its name rather than later as a wrong shape."""
    data = _decompress(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != UBYTE or data[3] != ndim:
        magic = data[:4].hex() or "nothing"
        raise ValueError(f"{path}: expected IDX magic 000008{ndim:02x}, got {magic}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: expected a {header}-byte header, got {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) - header != math.prod(shape):
        raise ValueError(
            f"{path}: expected {math.prod(shape)} bytes for shape {shape}, "
            f"got {len(data) - header} (truncated or corrupt)"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _decompress(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: expected a gzip file, got an unreadable one ({error})") from error
