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


Buffer = bytes | bytearray | memoryview


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
    return b"".join(encode_parts(weights))


def encode_parts(weights: Sequence[np.ndarray]) -> list[memoryview]:
    """What ``encode`` joins: each tensor's little-endian bytes, a view of the tensor itself
    where it is already laid out so (a copy only for another byte order or a strided array)."""
    return [
        memoryview(np.ascontiguousarray(w, dtype=np.dtype(w.dtype).newbyteorder("<")).reshape(-1).view(np.uint8))
        for w in weights
    ]


def nbytes(data: Buffer | Sequence[Buffer]) -> int:
    """The length of an encoded buffer, or of the buffer its parts join into."""
    if isinstance(data, bytes | bytearray | memoryview):
        return memoryview(data).nbytes
    return sum(memoryview(part).nbytes for part in data)


def decode(specs: Sequence[Spec], data: Buffer | Sequence[Buffer]) -> list[np.ndarray]:
    """Views into ``data`` (no copy): read-only when ``data`` is ``bytes``. ``data`` may be the
    parts ``encode_parts`` gave: decoded in place when each is one tensor's, else joined first."""
    sizes = [s.nbytes for s in specs]
    if not isinstance(data, bytes | bytearray | memoryview):
        parts = [memoryview(part) for part in data]
        if [part.nbytes for part in parts] != sizes:
            return decode(specs, b"".join(parts))
        return [_tensor(spec, part, size, 0) for spec, part, size in zip(specs, parts, sizes, strict=True)]
    if memoryview(data).nbytes != sum(sizes):
        raise CodecError(f"expected {sum(sizes)} bytes for {len(specs)} tensors, got {memoryview(data).nbytes}")
    out, offset = [], 0
    for spec, size in zip(specs, sizes, strict=True):
        out.append(_tensor(spec, data, size, offset))
        offset += size
    return out


def _tensor(spec: Spec, data: Buffer, size: int, offset: int) -> np.ndarray:
    dtype = DTYPES[spec.dtype]
    return np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(spec.shape)


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
        self._view = memoryview(self.buffer)  # bytes into a bytearray slice are copied twice, into a view once
        self.received = 0

    def add(self, chunk: bytes) -> None:
        end = self.received + len(chunk)
        if end > len(self.buffer):
            raise CodecError(f"expected {len(self.buffer)} bytes in all, got more ({end} so far)")
        self._view[self.received : end] = chunk
        self.received = end

    def finish(self) -> bytearray:
        if self.received != len(self.buffer):
            raise CodecError(f"expected {len(self.buffer)} bytes, got {self.received}: the upload was truncated")
        self._view.release()
        return self.buffer


def to_proto(specs: Sequence[Spec]) -> list:
    from fedge.shared.proto import coordinator_pb2 as pb

    return [pb.TensorSpec(name=s.name, dtype=s.dtype, shape=list(s.shape)) for s in specs]


def from_proto(messages: Iterable) -> list[Spec]:
    return [Spec(m.name, m.dtype, tuple(int(d) for d in m.shape)) for m in messages]
