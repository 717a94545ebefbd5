"""Mask expansion: the AES-256-CTR keystream of a 32-byte seed, read as little-endian uint32.

    keystream(seed, n) = AES-256-CTR(key = seed, initial counter block = 16 zero bytes).encrypt(n zero bytes)
    expand(seed, c)[m] = uint32 little-endian of keystream bytes 4m … 4m+3

The counter block is one 128-bit big-endian integer incremented per block (WebCrypto
``{name: "AES-CTR", counter: new Uint8Array(16), length: 128}``). A shorter expansion is a
prefix of a longer one, and value m's bytes lie in counter block m // 4 (``Stream`` starts there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_SIZE = 32
INITIAL_COUNTER = bytes(16)
_CHUNK = 1 << 20
_ZEROS = np.zeros(_CHUNK, dtype=np.uint8)
_ZEROS.flags.writeable = False


def _check_seed(seed: object) -> bytes:
    if not isinstance(seed, bytes):
        raise TypeError(f"a PRG seed must be {SEED_SIZE} bytes, got {type(seed).__name__}")
    if len(seed) != SEED_SIZE:
        raise ValueError(f"a PRG seed must be exactly {SEED_SIZE} bytes, got {len(seed)}")
    return seed


def _check_count(count: object, what: str) -> int:
    if not isinstance(count, int | np.integer) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{what} must be a non-negative int, got {count!r}")
    return int(count)


def _encryptor(seed: bytes, counter_block: bytes) -> Any:
    """AES-256-CTR from ``counter_block``; cryptography releases the GIL while it encrypts, so
    threads expand masks side by side."""
    return Cipher(algorithms.AES(_check_seed(seed)), modes.CTR(counter_block)).encryptor()


def _fill(seed: bytes, out: np.ndarray, nbytes: int) -> None:
    """Writes ``nbytes`` of keystream into the uint8 view ``out`` (which has 16 spare bytes)."""
    encryptor = _encryptor(seed, INITIAL_COUNTER)
    for offset in range(0, nbytes, _CHUNK):
        size = min(_CHUNK, nbytes - offset)
        encryptor.update_into(_ZEROS[:size], out[offset:])


def keystream(seed: bytes, nbytes: int) -> bytes:
    nbytes = _check_count(nbytes, "nbytes")
    out = np.empty(nbytes + 16, dtype=np.uint8)
    _fill(seed, out, nbytes)
    return out[:nbytes].tobytes()


class Stream:
    """``expand(seed, ·)`` read in slices from value ``start`` on (a multiple of 4: a whole AES
    block), so that many masks can be added one cache-sized slice at a time."""

    __slots__ = ("_encryptor",)

    def __init__(self, seed: bytes, start: int = 0) -> None:
        start = _check_count(start, "start")
        if start % 4:
            raise ValueError(f"a stream starts at a whole AES block (a multiple of 4 values), got {start}")
        block = (start // 4).to_bytes(16, "big")  # the counter block of value `start`
        self._encryptor = _encryptor(seed, block)

    def next_into(self, scratch: np.ndarray, count: int) -> np.ndarray:
        """The next ``count`` values, written into ``scratch`` (uint32, at least count + 4 long:
        OpenSSL wants a spare block); returns their view."""
        if scratch.dtype != np.uint32 or scratch.ndim != 1 or scratch.size < count + 4 or count > _CHUNK // 4:
            raise ValueError(
                f"expected a 1-D uint32 scratch of at least {count + 4} values and at most {_CHUNK // 4} "
                f"values at a time, got {count} into {scratch.dtype} {scratch.shape}"
            )
        self._encryptor.update_into(_ZEROS[: 4 * count], scratch.view(np.uint8))
        return scratch[:count]


def expand(seed: bytes, count: int) -> np.ndarray:
    """``count`` uint32 values (a fresh, writable array)."""
    count = _check_count(count, "count")
    out = np.empty(count + 4, dtype="<u4")
    _fill(seed, out.view(np.uint8), 4 * count)
    return out[:count].astype(np.uint32, copy=False)
