"""HKDF-SHA256 key derivation: one label per purpose, bound to the round and the pair.

    okm  = HKDF-SHA256(ikm = X25519 shared secret, salt = SALT, info = info(...), length = 32)
    info = label ‖ round_id (uint64 BE) ‖ min(i, j) (uint16 BE) ‖ max(i, j) (uint16 BE)

The pair is ordered so that both ends derive the same key; the label says what the key is for.
Client indices are positions in the round's cohort, 0 … 65534 (the Shamir x of index i is i + 1).
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"fedge/secagg/v1"
SHARE_ENCRYPTION = b"fedge/secagg/v1/share-encryption"
PAIRWISE_MASK = b"fedge/secagg/v1/pairwise-mask"
LABELS = (SHARE_ENCRYPTION, PAIRWISE_MASK)

SECRET_SIZE = 32
OUTPUT_SIZE = 32
MAX_INDEX = 0xFFFF - 1
MAX_ROUND_ID = 2**64 - 1


def check_index(value: object, what: str = "a client index") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int in 0..{MAX_INDEX}, got {type(value).__name__}")
    if not 0 <= value <= MAX_INDEX:
        raise ValueError(f"{what} must be in 0..{MAX_INDEX}, got {value}")
    return value


def check_round_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"round_id must be an int in 0..2^64-1, got {type(value).__name__}")
    if not 0 <= value <= MAX_ROUND_ID:
        raise ValueError(f"round_id must be in 0..2^64-1, got {value}")
    return value


def info(label: bytes, round_id: int, i: int, j: int) -> bytes:
    if label not in LABELS:
        raise ValueError(f"label must be one of {[x.decode() for x in LABELS]}, got {label!r}")
    check_round_id(round_id)
    if check_index(i, "i") == check_index(j, "j"):
        raise ValueError(f"a pair needs two different clients, got {i} twice")
    return label + struct.pack(">QHH", round_id, min(i, j), max(i, j))


def derive(shared_secret: bytes, label: bytes, round_id: int, i: int, j: int) -> bytes:
    if not isinstance(shared_secret, bytes) or len(shared_secret) != SECRET_SIZE:
        raise ValueError(f"the shared secret must be {SECRET_SIZE} bytes, got {_describe(shared_secret)}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=OUTPUT_SIZE, salt=SALT, info=info(label, round_id, i, j))
    return hkdf.derive(shared_secret)


def share_key(shared_secret: bytes, round_id: int, i: int, j: int) -> bytes:
    """The AES-256-GCM key for share bundles between i and j (from their ``c`` keys)."""
    return derive(shared_secret, SHARE_ENCRYPTION, round_id, i, j)


def pairwise_seed(shared_secret: bytes, round_id: int, i: int, j: int) -> bytes:
    """The PRG seed of the mask that i and j add with opposite signs (from their ``s`` keys)."""
    return derive(shared_secret, PAIRWISE_MASK, round_id, i, j)


def _describe(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
