"""Share bundles: what client i sends client j, sealed with AES-256-GCM under their share key.

    plaintext  = sender (uint16 BE) ‖ receiver (uint16 BE) ‖ share of s_sk (68 B) ‖ share of b (68 B)   140 bytes
    nonce      = round_id (uint64 BE) ‖ sender (uint16 BE) ‖ receiver (uint16 BE)                       12 bytes
    aad        = the same 12 bytes as the nonce
    ciphertext = AES-256-GCM(key = kdf.share_key(...)).encrypt(nonce, plaintext, aad)                156 bytes

Each direction of each pair sends one bundle per round, so a nonce never repeats under a key.
The server relays bundles it cannot read; decryption failure raises ShareDecryptionError.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedge.shared.secagg.kdf import check_index, check_round_id
from fedge.shared.secagg.shamir import SHARE_SIZE, Share

KEY_SIZE = 32
HEADER = struct.Struct(">HH")
NONCE = struct.Struct(">QHH")
PLAINTEXT_SIZE = HEADER.size + 2 * SHARE_SIZE
TAG_SIZE = 16
CIPHERTEXT_SIZE = PLAINTEXT_SIZE + TAG_SIZE


class ShareDecryptionError(ValueError):
    """A bundle that does not open: wrong key, round, sender or receiver, or tampered bytes."""


class RevealRefused(ValueError):
    """An unmask request a client must not answer: it would reveal both secrets of a neighbour."""


@dataclass(frozen=True)
class ShareBundle:
    sender: int
    receiver: int
    s_share: Share
    b_share: Share

    def __post_init__(self) -> None:
        check_index(self.sender, "sender")
        check_index(self.receiver, "receiver")
        if self.sender == self.receiver:
            raise ValueError(f"a bundle goes to another client, got sender = receiver = {self.sender}")
        for name in ("s_share", "b_share"):
            share = getattr(self, name)
            if not isinstance(share, Share):
                raise TypeError(f"{name} must be a Share, got {type(share).__name__}")
            if share.x != self.receiver + 1:
                raise ValueError(f"{name}.x must be receiver + 1 = {self.receiver + 1}, got {share.x}")

    def to_bytes(self) -> bytes:
        return HEADER.pack(self.sender, self.receiver) + self.s_share.to_bytes() + self.b_share.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareBundle:
        if not isinstance(data, bytes) or len(data) != PLAINTEXT_SIZE:
            got = f"{len(data)} bytes" if isinstance(data, bytes) else type(data).__name__
            raise ValueError(f"a share bundle is {PLAINTEXT_SIZE} bytes, got {got}")
        sender, receiver = HEADER.unpack_from(data)
        s_share = Share.from_bytes(data[HEADER.size : HEADER.size + SHARE_SIZE])
        return cls(sender, receiver, s_share, Share.from_bytes(data[HEADER.size + SHARE_SIZE :]))


def nonce(round_id: int, sender: int, receiver: int) -> bytes:
    return NONCE.pack(check_round_id(round_id), check_index(sender, "sender"), check_index(receiver, "receiver"))


def _aead(key: bytes) -> AESGCM:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        got = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise ValueError(f"a share key must be exactly {KEY_SIZE} bytes (AES-256), got {got}")
    return AESGCM(key)


def encrypt_bundle(key: bytes, round_id: int, bundle: ShareBundle) -> bytes:
    if not isinstance(bundle, ShareBundle):
        raise TypeError(f"expected a ShareBundle, got {type(bundle).__name__}")
    iv = nonce(round_id, bundle.sender, bundle.receiver)
    return _aead(key).encrypt(iv, bundle.to_bytes(), iv)


def decrypt_bundle(key: bytes, round_id: int, sender: int, receiver: int, ciphertext: bytes) -> ShareBundle:
    """The bundle ``sender`` sealed for ``receiver`` in this round, or ShareDecryptionError."""
    iv = nonce(round_id, sender, receiver)
    if not isinstance(ciphertext, bytes) or len(ciphertext) != CIPHERTEXT_SIZE:
        got = f"{len(ciphertext)} bytes" if isinstance(ciphertext, bytes) else type(ciphertext).__name__
        raise ShareDecryptionError(f"a sealed bundle is {CIPHERTEXT_SIZE} bytes, got {got}")
    try:
        plaintext = _aead(key).decrypt(iv, ciphertext, iv)
    except InvalidTag:
        raise ShareDecryptionError(
            f"the bundle from {sender} to {receiver} in round {round_id} does not authenticate "
            "(wrong key, round, sender or receiver, or tampered bytes)"
        ) from None
    bundle = ShareBundle.from_bytes(plaintext)
    if (bundle.sender, bundle.receiver) != (sender, receiver):
        raise ShareDecryptionError(
            f"expected a bundle from {sender} to {receiver}, got one from {bundle.sender} to {bundle.receiver}"
        )
    return bundle


def reveal(
    bundles: Mapping[int, ShareBundle], survivors: Collection[int], dropped: Collection[int]
) -> tuple[dict[int, Share], dict[int, Share]]:
    """The unmask answer: shares of b for neighbours that survived, of s_sk for those that dropped.

    Never both for one neighbour: with b and s_sk of a client the server could unmask its input.
    """
    both = set(survivors) & set(dropped)
    if both:
        raise RevealRefused(f"a neighbour is either a survivor or dropped, got both for {sorted(both)}")
    unknown = (set(survivors) | set(dropped)) - set(bundles)
    if unknown:
        raise RevealRefused(f"expected only neighbours that sent this client shares, got {sorted(unknown)}")
    return {j: bundles[j].b_share for j in survivors}, {j: bundles[j].s_share for j in dropped}
