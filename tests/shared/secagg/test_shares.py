from __future__ import annotations

import re

import pytest

from fedge.shared.secagg import shares
from fedge.shared.secagg.keys import PrivateKey, agree
from fedge.shared.secagg.shamir import Share
from fedge.shared.secagg.shares import RevealRefused, ShareBundle, ShareDecryptionError, decrypt_bundle, encrypt_bundle


@pytest.fixture
def sealed(vector):
    v = vector("shares.json")
    return v, bytes.fromhex(v["key"]), bytes.fromhex(v["ciphertext"])


def test_encryption_replays_the_vector(vector):
    v = vector("shares.json")
    secret = agree(
        PrivateKey.from_bytes(bytes.fromhex(v["sender_c_private"])),
        PrivateKey.from_bytes(bytes.fromhex(v["receiver_c_private"])).public_key(),
    )
    assert secret.hex() == v["shared_secret"]
    assert shares.nonce(v["round_id"], v["sender"], v["receiver"]).hex() == v["nonce"] == v["aad"]
    bundle = ShareBundle.from_bytes(bytes.fromhex(v["plaintext"]))
    assert bundle.s_share.to_bytes().hex() == v["s_share"]
    assert bundle.b_share.to_bytes().hex() == v["b_share"]
    assert encrypt_bundle(bytes.fromhex(v["key"]), v["round_id"], bundle).hex() == v["ciphertext"]


def test_decryption_replays_the_vector(sealed):
    v, key, ciphertext = sealed
    bundle = decrypt_bundle(key, v["round_id"], v["sender"], v["receiver"], ciphertext)
    assert bundle.to_bytes().hex() == v["plaintext"]


@pytest.mark.parametrize("case", range(3))
def test_refused_vectors_raise(vector, case):
    v = vector("shares.json")
    bad = v["refused"][case]
    with pytest.raises(ShareDecryptionError, match="does not authenticate"):
        decrypt_bundle(bytes.fromhex(v["key"]), bad["round_id"], bad["sender"], bad["receiver"],
                       bytes.fromhex(bad["ciphertext"]))  # fmt: skip


def test_every_tampered_byte_raises(sealed):
    v, key, ciphertext = sealed
    for position in range(len(ciphertext)):
        tampered = bytearray(ciphertext)
        tampered[position] ^= 0x80
        with pytest.raises(ShareDecryptionError):
            decrypt_bundle(key, v["round_id"], v["sender"], v["receiver"], bytes(tampered))


def test_wrong_key_raises(sealed):
    v, _, ciphertext = sealed
    with pytest.raises(ShareDecryptionError):
        decrypt_bundle(bytes(32), v["round_id"], v["sender"], v["receiver"], ciphertext)


def test_truncated_ciphertext_raises(sealed):
    v, key, ciphertext = sealed
    with pytest.raises(ShareDecryptionError, match="156 bytes, got 155"):
        decrypt_bundle(key, v["round_id"], v["sender"], v["receiver"], ciphertext[:-1])


def test_short_key_is_refused_with_the_rule(sealed):
    v, key, ciphertext = sealed
    with pytest.raises(ValueError, match=re.escape("exactly 32 bytes (AES-256), got 16 bytes")):
        decrypt_bundle(key[:16], v["round_id"], v["sender"], v["receiver"], ciphertext)


def test_bundle_whose_share_is_for_another_receiver_is_refused():
    with pytest.raises(ValueError, match=r"s_share.x must be receiver \+ 1 = 3, got 2"):
        ShareBundle(0, 2, Share(2, 5), Share(3, 5))


def test_bundle_to_oneself_is_refused():
    with pytest.raises(ValueError, match="sender = receiver = 2"):
        ShareBundle(2, 2, Share(3, 5), Share(3, 5))


def _bundles() -> dict[int, ShareBundle]:
    return {j: ShareBundle(j, 0, Share(1, 10 + j), Share(1, 20 + j)) for j in (1, 2, 3)}


def test_reveal_gives_b_for_survivors_and_s_for_the_dropped():
    b_shares, s_shares = shares.reveal(_bundles(), survivors=[1, 3], dropped=[2])
    assert {j: s.y for j, s in b_shares.items()} == {1: 21, 3: 23}
    assert {j: s.y for j, s in s_shares.items()} == {2: 12}


def test_client_asked_for_both_shares_of_a_neighbour_refuses():
    with pytest.raises(RevealRefused, match=r"got both for \[2\]"):
        shares.reveal(_bundles(), survivors=[1, 2], dropped=[2, 3])


def test_client_asked_about_a_stranger_refuses():
    with pytest.raises(RevealRefused, match=r"got \[7\]"):
        shares.reveal(_bundles(), survivors=[1, 7], dropped=[])
