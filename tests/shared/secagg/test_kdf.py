from __future__ import annotations

import re

import pytest

from fedge.shared.secagg import kdf


def test_derivations_replay_the_vectors(vector):
    v = vector("kdf.json")
    secret = bytes.fromhex(v["shared_secret"])
    assert kdf.SALT.hex() == v["salt"]
    for case in v["cases"]:
        label = case["label"].encode()
        assert kdf.info(label, case["round_id"], case["i"], case["j"]).hex() == case["info"]
        assert kdf.derive(secret, label, case["round_id"], case["i"], case["j"]).hex() == case["okm"]


def test_info_is_label_round_and_ordered_pair():
    assert kdf.info(kdf.PAIRWISE_MASK, 1, 3, 2) == kdf.PAIRWISE_MASK + bytes.fromhex("000000000000000100020003")


def test_both_ends_of_a_pair_derive_the_same_key():
    secret = bytes(range(32))
    assert kdf.share_key(secret, 5, 1, 9) == kdf.share_key(secret, 5, 9, 1)


def test_keys_differ_per_purpose_round_and_pair():
    secret = bytes(range(32))
    keys = {
        kdf.share_key(secret, 5, 1, 9),
        kdf.pairwise_seed(secret, 5, 1, 9),
        kdf.share_key(secret, 6, 1, 9),
        kdf.share_key(secret, 5, 1, 8),
    }
    assert len(keys) == 4


def test_a_pair_of_one_client_is_refused():
    with pytest.raises(ValueError, match="two different clients, got 4 twice"):
        kdf.share_key(bytes(32), 1, 4, 4)


@pytest.mark.parametrize("index", [-1, 65535])
def test_index_out_of_range_is_refused(index):
    with pytest.raises(ValueError, match=re.escape("must be in 0..65534")):
        kdf.pairwise_seed(bytes(32), 1, 0, index)


@pytest.mark.parametrize("round_id", [-1, 2**64])
def test_round_id_out_of_range_is_refused(round_id):
    with pytest.raises(ValueError, match=re.escape("round_id must be in 0..2^64-1")):
        kdf.pairwise_seed(bytes(32), round_id, 0, 1)


def test_short_shared_secret_is_refused():
    with pytest.raises(ValueError, match="must be 32 bytes, got 31 bytes"):
        kdf.share_key(bytes(31), 1, 0, 1)


def test_unknown_label_is_refused():
    with pytest.raises(ValueError, match="label must be one of"):
        kdf.derive(bytes(32), b"fedge/secagg/v1/other", 1, 0, 1)
