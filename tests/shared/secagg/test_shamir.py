from __future__ import annotations

import os
import re

import pytest

from fedge.shared.secagg.shamir import (
    DuplicateShare,
    NotEnoughShares,
    P,
    ReconstructionError,
    Share,
    combine,
    combine_many,
    lagrange_at_zero,
    split,
)


def _shares(hexes: list[str]) -> list[Share]:
    return [Share.from_bytes(bytes.fromhex(h)) for h in hexes]


def test_splits_replay_the_vectors(vector, generator):
    for case in vector("shamir.json")["splits"]:
        rng = generator.KeystreamRng(bytes.fromhex(case["rng_seed"]))
        parts = split(bytes.fromhex(case["secret"]), case["threshold"], case["xs"], rng)
        assert [p.to_bytes().hex() for p in parts] == case["shares"]


def test_combinations_replay_the_vectors(vector):
    for case in vector("shamir.json")["splits"]:
        for combination in case["combinations"]:
            shares = _shares(combination["shares"])
            assert combine(shares, case["threshold"]).hex() == combination["secret"] == case["secret"]
            if "lagrange" in combination:
                weights = lagrange_at_zero(tuple(s.x for s in shares))
                assert [w.to_bytes(66, "big").hex() for w in weights] == combination["lagrange"]


def test_too_few_shares_from_the_vectors_are_refused(vector):
    for case in vector("shamir.json")["splits"]:
        with pytest.raises(NotEnoughShares, match=f"threshold={case['threshold']} shares, got"):
            combine(_shares(case["too_few"]), case["threshold"])


def test_any_threshold_shares_give_the_secret_back():
    secret = os.urandom(32)
    parts = split(secret, 3, [1, 2, 3, 4, 5, 6])
    assert {combine(parts[i : i + 3], 3) for i in range(4)} == {secret}


def test_fewer_than_threshold_shares_fit_every_secret():
    # t − 1 shares pin nothing: for any candidate secret there is a t-th share that completes it
    parts, candidate = split(os.urandom(32), 3, [1, 2, 3])[:2], os.urandom(32)
    weights = lagrange_at_zero((1, 2, 3))
    partial = sum(w * s.y for w, s in zip(weights, parts, strict=False))
    forged = Share(3, (int.from_bytes(candidate, "big") - partial) * pow(weights[2], -1, P) % P)
    assert combine([*parts, forged], 3) == candidate


def test_fewer_than_threshold_shares_do_not_reconstruct():
    secret = os.urandom(32)
    parts = split(secret, 4, [1, 2, 3, 4])
    with pytest.raises(NotEnoughShares):
        combine(parts[:3], 4)
    with pytest.raises(ReconstructionError, match="do not belong to one 32-byte secret"):
        combine(parts[:3], 3)  # a lower threshold interpolates the wrong polynomial: not a 32-byte value


def test_duplicate_x_is_refused():
    parts = split(bytes(32), 2, [1, 2])
    with pytest.raises(DuplicateShare, match=r"got \[1, 1, 2\]"):
        combine([parts[0], parts[0], parts[1]], 2)


def test_duplicate_xs_are_refused_when_splitting():
    with pytest.raises(ValueError, match="xs must be distinct"):
        split(bytes(32), 2, [1, 1, 2])


@pytest.mark.parametrize("x", [0, 65536, -1])
def test_x_out_of_range_is_refused_with_the_rule(x):
    with pytest.raises(ValueError, match=re.escape("x must be an int in 1..65535")):
        Share(x, 1)


@pytest.mark.parametrize("y", [-1, P])
def test_y_out_of_the_field_is_refused(y):
    with pytest.raises(ValueError, match=re.escape("y must be an int in 0..2^521-2")):
        Share(1, y)


def test_encoded_share_of_wrong_length_is_refused():
    with pytest.raises(ValueError, match=re.escape("68 bytes (x uint16 BE, y 66 bytes BE), got 67 bytes")):
        Share.from_bytes(bytes(67))


def test_share_encoding_is_x_then_y_big_endian():
    assert Share(0x0102, 3).to_bytes() == b"\x01\x02" + bytes(65) + b"\x03"


@pytest.mark.parametrize("size", [16, 33])
def test_secret_of_wrong_length_is_refused(size):
    with pytest.raises(ValueError, match=f"exactly 32 bytes, got {size} bytes"):
        split(bytes(size), 2, [1, 2])


def test_threshold_below_two_is_refused():
    with pytest.raises(ValueError, match="at least 2, got 1"):
        split(bytes(32), 1, [1, 2])


def test_more_threshold_than_holders_is_refused():
    with pytest.raises(ValueError, match="need at least threshold=3 xs, got 2"):
        split(bytes(32), 3, [1, 2])


def test_many_sharings_combine_together_as_each_alone(monkeypatch):
    """One inversion for every set of xs, through the cache and past its limit."""
    monkeypatch.setattr("fedge.shared.secagg.shamir.MAX_CACHED", 3)
    monkeypatch.setattr("fedge.shared.secagg.shamir._WEIGHTS", {})
    secrets = [os.urandom(32) for _ in range(5)]
    sharings = [split(secret, 3, [i + 1, i + 4, i + 9, 40]) for i, secret in enumerate(secrets)]
    sharings.append(sharings[0][1:])  # a set of xs met again, and another subset of one sharing
    assert combine_many(sharings, 3) == [*secrets, secrets[0]]
    assert combine_many(sharings, 3) == [combine(shares, 3) for shares in sharings]  # cached now, or cleared


def test_combining_many_refuses_as_combine_does():
    parts = split(bytes(32), 3, [1, 2, 3])
    with pytest.raises(NotEnoughShares):
        combine_many([parts, parts[:2]], 3)
    with pytest.raises(DuplicateShare):
        combine_many([parts, [parts[0], parts[0], parts[1]]], 2)
