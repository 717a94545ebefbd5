"""Secure aggregation (SecAgg+) primitives; the byte formats are specified in docs/secagg.md.

    keys.py      X25519 key pairs as raw 32 bytes; agree() → 32-byte shared secret
    kdf.py       HKDF-SHA256, one label per purpose, info = label ‖ round ‖ pair
    shares.py    share bundles sealed with AES-256-GCM; reveal() answers the unmask stage
    shamir.py    Shamir sharing of 32-byte secrets over GF(2^521 − 1)
    prg.py       AES-256-CTR keystream in 256 KiB segments → little-endian uint32 masks
    quantize.py  clip + stochastic rounding into uint32 so the cohort's sum cannot wrap
    masking.py   add / remove self and pairwise masks mod 2^32
    graph.py     the round's k-regular neighbour graph from a public seed

A round, one line per stage (each client i, its neighbours N(i) from graph.neighbours):

    advertise keys  i → server: c_pk, s_pk                      server → all: every key, graph seed
    share keys      i → j ∈ N(i): encrypt_bundle(split(s_sk), split(b)), relayed by the server
    masked input    i → server: mask(quantize(update), b, [(s_ij, sign(i, j)) …])
    unmask          i → server: reveal(): share of b for surviving j, of s_sk for dropped j

Errors: KeyAgreementError, ShareDecryptionError, RevealRefused and ReconstructionError
(NotEnoughShares, DuplicateShare) are ValueErrors; malformed inputs raise ValueError or TypeError
with the rule in the message.
"""

from __future__ import annotations

from fedge.shared.secagg.graph import neighbours
from fedge.shared.secagg.kdf import PAIRWISE_MASK, SHARE_ENCRYPTION, pairwise_seed, share_key
from fedge.shared.secagg.keys import KeyAgreementError, PrivateKey, PublicKey, agree
from fedge.shared.secagg.masking import mask, remove_pair_masks, remove_self_masks, sign
from fedge.shared.secagg.prg import expand
from fedge.shared.secagg.quantize import Quantizer
from fedge.shared.secagg.shamir import (
    DuplicateShare,
    NotEnoughShares,
    ReconstructionError,
    Share,
    combine,
    combine_many,
    split,
)
from fedge.shared.secagg.shares import (
    RevealRefused,
    ShareBundle,
    ShareDecryptionError,
    decrypt_bundle,
    encrypt_bundle,
    reveal,
)

# The byte format a cohort masks with, sent in every SecAggPlan: a client that speaks another one
# declines the round (masks made in two formats would not cancel). 1: the keystream from counter
# block zero, until 2026-12-07; 2: the keystream in 256 KiB segments (docs/secagg.md).
FORMAT = 2

__all__ = [
    "FORMAT",
    "PAIRWISE_MASK",
    "SHARE_ENCRYPTION",
    "DuplicateShare",
    "KeyAgreementError",
    "NotEnoughShares",
    "PrivateKey",
    "PublicKey",
    "Quantizer",
    "ReconstructionError",
    "RevealRefused",
    "Share",
    "ShareBundle",
    "ShareDecryptionError",
    "agree",
    "combine",
    "combine_many",
    "decrypt_bundle",
    "encrypt_bundle",
    "expand",
    "mask",
    "neighbours",
    "pairwise_seed",
    "remove_pair_masks",
    "remove_self_masks",
    "reveal",
    "share_key",
    "sign",
    "split",
]
