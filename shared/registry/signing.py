"""Ed25519 keys that sign published models' manifests, as raw bytes (RFC 8032, pure Ed25519).

    SigningKey      the coordinator's private key: the 32-byte seed, in <data_dir>/keys/signing.key
    VerifyKey       its public key: 32 bytes that devices and users pin; fingerprint() names it
    sign_manifest   the 64-byte signature over manifest.to_json() (canonical JSON)
    verify          signature, then manifest, then model; returns the Manifest or raises

This key signs manifests and nothing else. A manifest carries the model's SHA-256 and size, so
one signature covers both files.

Errors: VerificationError (published files that must not be trusted) and KeyFileError (a key
file breaking its rules) are ValueErrors; malformed keys raise ValueError or TypeError with the
rule in the message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedge.shared.registry.manifest import Manifest, ManifestError

KEY_SIZE = 32
SIGNATURE_SIZE = 64
FINGERPRINT_CHARS = 16  # hex characters of SHA-256(raw public key): 64 bits, enough to tell keys apart by eye


class VerificationError(ValueError):
    """A published model must not be run: its signature, manifest or model file is wrong."""


class KeyFileError(ValueError):
    """The signing key file cannot be used as it is; the message says why and what to do."""


def _raw(data: object, size: int, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes of length {size}, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) != size:
        raise ValueError(f"{what} must be exactly {size} bytes, got {len(raw)}")
    return raw


def _bytes(data: object, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes, got {type(data).__name__}")
    return bytes(data)


class VerifyKey:
    """An Ed25519 public key: the raw 32-byte encoding of RFC 8032."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PublicKey) -> None:
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError(f"expected an Ed25519PublicKey, got {type(key).__name__}")
        self._key = key

    @classmethod
    def from_bytes(cls, data: bytes) -> VerifyKey:
        return cls(Ed25519PublicKey.from_public_bytes(_raw(data, KEY_SIZE, "an Ed25519 public key")))

    def public_bytes(self) -> bytes:
        return self._key.public_bytes_raw()

    def fingerprint(self) -> str:
        """The first 16 hex characters of SHA-256(raw public key): what a person compares."""
        return hashlib.sha256(self.public_bytes()).hexdigest()[:FINGERPRINT_CHARS]

    def verify(self, signature: bytes, data: bytes) -> None:
        """Returns only if `signature` is this key's over `data`."""
        signature, data = _bytes(signature, "signature"), _bytes(data, "data")
        if len(signature) != SIGNATURE_SIZE:
            raise VerificationError(f"expected a {SIGNATURE_SIZE}-byte Ed25519 signature, got {len(signature)} bytes")
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            raise VerificationError(
                f"the signature does not verify with key {self.fingerprint()}: "
                "the signed bytes were changed, or another key signed them"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and self.public_bytes() == other.public_bytes()

    def __hash__(self) -> int:
        return hash(self.public_bytes())

    def __repr__(self) -> str:
        return f"VerifyKey({self.fingerprint()})"


class SigningKey:
    """An Ed25519 private key: the raw 32-byte seed of RFC 8032."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError(f"expected an Ed25519PrivateKey, got {type(key).__name__}")
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(_raw(data, KEY_SIZE, "an Ed25519 private key")))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    def public_key(self) -> VerifyKey:
        return VerifyKey(self._key.public_key())

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature over `data` (deterministic: same key and data, same bytes)."""
        return self._key.sign(_bytes(data, "data"))

    def __repr__(self) -> str:  # never print the secret
        return f"SigningKey(public={self.public_key().fingerprint()})"


def sign_manifest(key: SigningKey, manifest: Manifest) -> bytes:
    """The signature that goes next to the manifest: over its canonical JSON."""
    if not isinstance(key, SigningKey):
        raise TypeError(f"key must be a SigningKey, got {type(key).__name__}")
    if not isinstance(manifest, Manifest):
        raise TypeError(f"manifest must be a Manifest, got {type(manifest).__name__}")
    return key.sign(manifest.to_json())


def verify(key: VerifyKey, manifest_json: bytes, signature: bytes, model_bytes: bytes) -> Manifest:
    """The manifest, once the signature, the manifest and the model all check out; else raises.

    The signature is checked first, over the manifest bytes as received, so nothing unsigned is
    ever parsed."""
    if not isinstance(key, VerifyKey):
        raise TypeError(f"key must be a VerifyKey, got {type(key).__name__}")
    manifest_json = _bytes(manifest_json, "manifest_json")
    model_bytes = _bytes(model_bytes, "model_bytes")
    key.verify(signature, manifest_json)
    try:
        manifest = Manifest.from_json(manifest_json)
    except ManifestError as error:
        raise VerificationError(f"the signed manifest does not parse: {error}") from None
    check_model(manifest, model_bytes)
    return manifest


def check_model(manifest: Manifest, model_bytes: bytes) -> None:
    """Returns only if `model_bytes` is the file `manifest` describes (size, then SHA-256)."""
    model_bytes = _bytes(model_bytes, "model_bytes")
    if len(model_bytes) != manifest.size:
        raise VerificationError(
            f"the model file does not match its manifest: expected {manifest.size} bytes, got {len(model_bytes)}"
        )
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != manifest.sha256:
        raise VerificationError(
            f"the model file does not match its manifest: expected sha256 {manifest.sha256}, got {digest}"
        )


def key_path(data_dir: Path) -> Path:
    """Where a coordinator keeps its signing key."""
    return Path(data_dir) / "keys" / "signing.key"


def load(path: Path) -> SigningKey:
    """The key in `path`, refused if others may read it or it is not a raw 32-byte key."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"no signing key at {path}: a server makes one at its first start") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{path} is not a file: expected the raw {KEY_SIZE}-byte Ed25519 private key")
        mode = stat.S_IMODE(info.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise KeyFileError(
                f"{path} has mode {mode:04o}: expected 0600, since only its owner may read a signing key; "
                f"run chmod 600 {path} (and make a new key if others may have read it)"
            )
        data = os.read(fd, KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_SIZE:
        raise KeyFileError(
            f"{path} holds {'more than ' if len(data) > KEY_SIZE else ''}{min(len(data), KEY_SIZE)} bytes: "
            f"expected the raw {KEY_SIZE}-byte Ed25519 private key; restore it from a backup, or delete it "
            "to make a new key at the next start (devices must then be given the new public key)"
        )
    return SigningKey.from_bytes(data)


def load_or_create(path: Path) -> SigningKey:
    """The key in `path`, made at a server's first start (file 0600, folder 0700)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        _create(path, SigningKey.generate())
    return load(path)


def _create(path: Path, key: SigningKey) -> None:
    """Writes a hidden temporary file and links it into place, so a reader never sees half a key
    and two servers starting at once keep the same one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made the key first: load() reads theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
