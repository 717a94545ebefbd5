"""Tensors on the wire: raw little-endian bytes, cut by specs (name, dtype, shape).

Weights are encoded once into one contiguous buffer and streamed in chunks; the receiver
checks the announced specs against what it expects before it reads a byte, then decodes
without copying more than once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1"), "uint32": np.dtype("<u4")}


class CodecError(ValueError):
    """Tensors that do not match what was expected; the message names the tensor."""


@dataclass(frozen=True)
class Spec:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize

    def describe(self) -> str:
        return f"{self.dtype} {self.shape}"


def specs_for(weights: Sequence[np.ndarray], names: Sequence[str]) -> list[Spec]:
    if len(weights) != len(names):
        raise CodecError(f"expected a name per tensor ({len(weights)}), got {len(names)}")
    return [Spec(n, _dtype_name(w.dtype), tuple(int(d) for d in w.shape)) for w, n in zip(weights, names, strict=True)]


def _dtype_name(dtype: np.dtype) -> str:
    for name, wire in DTYPES.items():
        if np.dtype(dtype).newbyteorder("<") == wire or np.dtype(dtype) == wire:
            return name
    raise CodecError(f"expected a dtype among {sorted(DTYPES)}, got {dtype}")


def encode(weights: Sequence[np.ndarray]) -> bytes:
    """One buffer of every tensor's little-endian bytes, in order.

    ``bytes.join`` reads each contiguous array's buffer directly: one copy, not two (``tobytes``, then join).
    """
    return b"".join(
        np.ascontiguousarray(w, dtype=np.dtype(w.dtype).newbyteorder("<")).reshape(-1).view(np.uint8) for w in weights
    )


def decode(specs: Sequence[Spec], data: bytes | bytearray | memoryview) -> list[np.ndarray]:
    total = sum(s.nbytes for s in specs)
    if len(data) != total:
        raise CodecError(f"expected {total} bytes for {len(specs)} tensors, got {len(data)}")
    out, offset = [], 0
    for spec in specs:
        array = np.frombuffer(
            data, dtype=DTYPES[spec.dtype], count=spec.nbytes // DTYPES[spec.dtype].itemsize, offset=offset
        )
        out.append(array.reshape(spec.shape))
        offset += spec.nbytes
    return out


def check_specs(expected: Sequence[Spec], received: Sequence[Spec]) -> None:
    """Refuse tensors whose count, names, dtypes or shapes differ, saying which and how."""
    if len(received) != len(expected):
        raise CodecError(f"expected {len(expected)} tensors, got {len(received)}")
    for i, (want, got) in enumerate(zip(expected, received, strict=True)):
        if got.dtype not in DTYPES:
            raise CodecError(f"tensor {i} {want.name!r}: expected dtype {want.dtype}, got unknown dtype {got.dtype!r}")
        if (want.name, want.dtype, want.shape) != (got.name, got.dtype, got.shape):
            raise CodecError(f"tensor {i} {want.name!r}: expected {want.describe()}, got {got.name!r} {got.describe()}")


def check_finite(tensors: Iterable[np.ndarray], names: Sequence[str]) -> None:
    for tensor, name in zip(tensors, names, strict=True):
        if not np.isfinite(tensor).all():
            raise CodecError(f"tensor {name!r} contains NaN or Inf")


def chunked(data: bytes | memoryview, size: int) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]


class Assembler:
    """Collects streamed chunks into one preallocated buffer, refusing overflow at once."""

    def __init__(self, expected_bytes: int) -> None:
        self.buffer = bytearray(expected_bytes)
        self.received = 0

    def add(self, chunk: bytes) -> None:
        end = self.received + len(chunk)
        if end > len(self.buffer):
            raise CodecError(f"expected {len(self.buffer)} bytes in all, got more ({end} so far)")
        self.buffer[self.received : end] = chunk
        self.received = end

    def finish(self) -> bytearray:
        if self.received != len(self.buffer):
            raise CodecError(f"expected {len(self.buffer)} bytes, got {self.received}: the upload was truncated")
        return self.buffer


def to_proto(specs: Sequence[Spec]) -> list:
    from fedge.shared.proto import coordinator_pb2 as pb

    return [pb.TensorSpec(name=s.name, dtype=s.dtype, shape=list(s.shape)) for s in specs]


def from_proto(messages: Iterable) -> list[Spec]:
    return [Spec(m.name, m.dtype, tuple(int(d) for d in m.shape)) for m in messages]
