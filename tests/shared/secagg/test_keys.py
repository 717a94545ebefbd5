from __future__ import annotations

import pytest

from fedge.shared.secagg.keys import KeyAgreementError, PrivateKey, PublicKey, agree


def test_agreements_replay_the_vectors(vector):
    for case in vector("keys.json")["agreements"]:
        a = PrivateKey.from_bytes(bytes.fromhex(case["private_a"]))
        b = PrivateKey.from_bytes(bytes.fromhex(case["private_b"]))
        assert a.public_bytes().hex() == case["public_a"]
        assert b.public_key().public_bytes().hex() == case["public_b"]
        assert agree(a, PublicKey.from_bytes(bytes.fromhex(case["public_b"]))).hex() == case["shared_secret"]
        assert agree(b, a.public_key()).hex() == case["shared_secret"]


def test_raw_encodings_round_trip():
    key = PrivateKey.generate()
    assert PrivateKey.from_bytes(key.private_bytes()).public_bytes() == key.public_bytes()
    assert PublicKey.from_bytes(key.public_bytes()) == key.public_key()


@pytest.mark.parametrize("case", range(2))
def test_low_order_peer_is_refused(vector, case):
    refused = vector("keys.json")["refused_peers"][case]
    private = PrivateKey.from_bytes(bytes.fromhex(refused["private"]))
    with pytest.raises(KeyAgreementError, match="low-order"):
        agree(private, PublicKey.from_bytes(bytes.fromhex(refused["peer_public"])))


@pytest.mark.parametrize("size", [0, 31, 33, 64])
@pytest.mark.parametrize("cls", [PrivateKey, PublicKey])
def test_wrong_key_length_is_refused_with_the_rule(cls, size):
    with pytest.raises(ValueError, match=f"exactly 32 bytes, got {size}"):
        cls.from_bytes(bytes(size))


@pytest.mark.parametrize("cls", [PrivateKey, PublicKey])
def test_key_from_text_is_refused(cls):
    with pytest.raises(TypeError, match="bytes of length 32, got str"):
        cls.from_bytes("00" * 32)


def test_agree_refuses_raw_bytes_for_the_peer():
    with pytest.raises(TypeError, match="peer_public must be a PublicKey, got bytes"):
        agree(PrivateKey.generate(), PrivateKey.generate().public_bytes())


def test_private_key_repr_hides_the_secret():
    key = PrivateKey.from_bytes(bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(key)
