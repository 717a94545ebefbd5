"""X25519 key pairs and key agreement, as raw 32-byte strings on the wire.

Every client holds two pairs per round: ``c`` (share encryption) and ``s`` (pairwise masks).
Keys are fresh per round and never reused across rounds.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

KEY_SIZE = 32


def _raw(data: object, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes of length {KEY_SIZE}, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) != KEY_SIZE:
        raise ValueError(f"{what} must be exactly {KEY_SIZE} bytes, got {len(raw)}")
    return raw


class PublicKey:
    """A peer's X25519 public key: the raw 32-byte u-coordinate (RFC 7748)."""

    __slots__ = ("_key",)

    def __init__(self, key: X25519PublicKey) -> None:
        if not isinstance(key, X25519PublicKey):
            raise TypeError(f"expected an X25519PublicKey, got {type(key).__name__}")
        self._key = key

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        return cls(X25519PublicKey.from_public_bytes(_raw(data, "an X25519 public key")))

    def public_bytes(self) -> bytes:
        return self._key.public_bytes_raw()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self.public_bytes() == other.public_bytes()

    def __hash__(self) -> int:
        return hash(self.public_bytes())

    def __repr__(self) -> str:
        return f"PublicKey({self.public_bytes().hex()})"


class PrivateKey:
    """An X25519 private key: the raw 32-byte scalar (RFC 7748; clamping happens at use)."""

    __slots__ = ("_key",)

    def __init__(self, key: X25519PrivateKey) -> None:
        if not isinstance(key, X25519PrivateKey):
            raise TypeError(f"expected an X25519PrivateKey, got {type(key).__name__}")
        self._key = key

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivateKey:
        return cls(X25519PrivateKey.from_private_bytes(_raw(data, "an X25519 private key")))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    def public_key(self) -> PublicKey:
        return PublicKey(self._key.public_key())

    def public_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    def __repr__(self) -> str:  # never print the secret
        return f"PrivateKey(public={self.public_bytes().hex()})"


class KeyAgreementError(ValueError):
    """The peer's public key gives no usable secret (a low-order point: the result is all zeros)."""


def agree(private: PrivateKey, peer_public: PublicKey) -> bytes:
    """The raw 32-byte X25519 shared secret; refuses the all-zero result (RFC 7748 §6.1)."""
    if not isinstance(private, PrivateKey):
        raise TypeError(f"private must be a PrivateKey, got {type(private).__name__}")
    if not isinstance(peer_public, PublicKey):
        raise TypeError(f"peer_public must be a PublicKey, got {type(peer_public).__name__}")
    try:
        secret = private._key.exchange(peer_public._key)
    except ValueError as error:  # OpenSSL already refuses the all-zero output
        raise KeyAgreementError(f"the peer's public key is a low-order point: {error}") from None
    if secret == bytes(KEY_SIZE):
        raise KeyAgreementError("the shared secret is all zeros: the peer's public key is a low-order point")
    return secret
