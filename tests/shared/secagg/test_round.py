"""A whole round, replayed message by message from the vectors, then run with dropouts."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.shared.secagg import kdf, shares
from fedge.shared.secagg.graph import neighbours
from fedge.shared.secagg.keys import PrivateKey, agree
from fedge.shared.secagg.masking import mask, remove_pair_masks, remove_self_masks
from fedge.shared.secagg.quantize import Quantizer
from fedge.shared.secagg.shamir import Share, combine, split

ROUNDS = ["round-no-dropout.json", "round-one-dropout.json"]


def _keys(v: dict, i: int, which: str) -> PrivateKey:
    return PrivateKey.from_bytes(bytes.fromhex(v["clients"][i][f"{which}_private"]))


def _inbox(v: dict, i: int) -> dict[int, shares.ShareBundle]:
    round_id, opened = v["parameters"]["round_id"], {}
    for message in (m for m in v["share_keys"] if m["receiver"] == i):
        j = message["sender"]
        key = kdf.share_key(agree(_keys(v, i, "c"), _keys(v, j, "c").public_key()), round_id, i, j)
        opened[j] = shares.decrypt_bundle(key, round_id, j, i, bytes.fromhex(message["ciphertext"]))
    return opened


@pytest.mark.parametrize("name", ROUNDS)
def test_round_keys_and_graph_replay(vector, name):
    v = vector(name)
    for message in v["advertise_keys"]:
        assert _keys(v, message["index"], "c").public_bytes().hex() == message["c_public"]
        assert _keys(v, message["index"], "s").public_bytes().hex() == message["s_public"]
    p = v["parameters"]
    assert neighbours(p["n"], p["k"], bytes.fromhex(v["graph_seed"])) == v["neighbours"]


@pytest.mark.parametrize("name", ROUNDS)
def test_round_share_keys_replay(vector, name, generator):
    v, p = vector(name), vector(name)["parameters"]
    for i in sorted({m["sender"] for m in v["share_keys"]}):
        sent = [m for m in v["share_keys"] if m["sender"] == i]
        rng = generator.KeystreamRng(bytes.fromhex(v["clients"][i]["share_rng_seed"]))
        xs = [m["receiver"] + 1 for m in sent]
        s_parts = split(_keys(v, i, "s").private_bytes(), p["threshold"], xs, rng)
        b_parts = split(bytes.fromhex(v["clients"][i]["b"]), p["threshold"], xs, rng)
        for m, s_part, b_part in zip(sent, s_parts, b_parts, strict=True):
            j = m["receiver"]
            key = kdf.share_key(agree(_keys(v, i, "c"), _keys(v, j, "c").public_key()), p["round_id"], i, j)
            bundle = shares.ShareBundle(i, j, s_part, b_part)
            assert (key.hex(), bundle.to_bytes().hex()) == (m["key"], m["plaintext"])
            assert shares.encrypt_bundle(key, p["round_id"], bundle).hex() == m["ciphertext"]


@pytest.mark.parametrize("name", ROUNDS)
def test_round_masked_inputs_replay(vector, name):
    v, p = vector(name), vector(name)["parameters"]
    quantizer = Quantizer(p["clip"], p["n"])
    for m in v["masked_input"]:
        i, client = m["index"], v["clients"][m["index"]]
        pairs = []
        for entry, j in zip(m["pair_seeds"], sorted(_inbox(v, i)), strict=True):
            seed = kdf.pairwise_seed(agree(_keys(v, i, "s"), _keys(v, j, "s").public_key()), p["round_id"], i, j)
            assert (entry["peer"], entry["sign"], entry["seed"]) == (j, 1 if i < j else -1, seed.hex())
            pairs.append((seed, entry["sign"]))
        q = quantizer.quantize_with(np.array(client["update"], np.float32), np.array(client["uniforms"]))
        assert q.tolist() == m["quantized"]
        assert mask(q, bytes.fromhex(client["b"]), pairs).tolist() == m["masked"]


@pytest.mark.parametrize("name", ROUNDS)
def test_round_unmask_answers_replay(vector, name):
    v = vector(name)
    for m in v["unmask"]:
        b_shares, s_shares = shares.reveal(_inbox(v, m["index"]), m["survivors"], m["dropped"])
        assert {str(j): s.to_bytes().hex() for j, s in b_shares.items()} == m["b_shares"]
        assert {str(j): s.to_bytes().hex() for j, s in s_shares.items()} == m["s_shares"]


def _revealed(v: dict, owner: int, kind: str) -> list[Share]:
    found = [m[kind][str(owner)] for m in sorted(v["unmask"], key=lambda m: m["index"]) if str(owner) in m[kind]]
    return [Share.from_bytes(bytes.fromhex(h)) for h in found]


@pytest.mark.parametrize("name", ROUNDS)
def test_round_server_result_replays(vector, name):
    v, p, server = vector(name), vector(name)["parameters"], vector(name)["server"]
    total = np.sum([np.array(m["masked"], np.uint32) for m in v["masked_input"]], axis=0, dtype=np.uint32)
    assert total.tolist() == server["masked_sum"]
    b_seeds = {i: combine(_revealed(v, i, "b_shares"), p["threshold"]) for i in server["survivors"]}
    assert {str(i): b.hex() for i, b in b_seeds.items()} == server["b"]
    for d in server["dropped"]:
        assert combine(_revealed(v, d, "s_shares"), p["threshold"]).hex() == server["s_private"][str(d)]
    removed = [(bytes.fromhex(r["seed"]), r["sign"]) for r in server["removed_pair_masks"]]
    unmasked = remove_pair_masks(remove_self_masks(total, b_seeds.values()), removed)
    assert unmasked.tolist() == server["total"]
    result = Quantizer(p["clip"], p["n"]).dequantize_sum(unmasked, len(server["survivors"]))
    assert result.tolist() == server["sum"]
    assert np.abs(result - np.array(server["clipped_sum"])).max() <= server["error_bound"]


def test_dropped_client_pair_masks_are_rebuilt_from_its_revealed_key(vector):
    v, p = vector("round-one-dropout.json"), vector("round-one-dropout.json")["parameters"]
    for r in v["server"]["removed_pair_masks"]:
        s_key = PrivateKey.from_bytes(bytes.fromhex(v["server"]["s_private"][str(r["dropped"])]))
        secret = agree(s_key, _keys(v, r["survivor"], "s").public_key())
        assert kdf.pairwise_seed(secret, p["round_id"], r["survivor"], r["dropped"]).hex() == r["seed"]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.3])
@pytest.mark.parametrize("stage", ["advertise_keys", "share_keys", "masked_input"])
def test_unmasked_sum_is_the_plain_sum_with_dropouts(generator, fraction, stage):
    n, rng = 20, np.random.default_rng(int(fraction * 100) + len(stage))
    dropped = rng.choice(n, size=round(fraction * n), replace=False).tolist()
    updates = rng.normal(0, 0.5, size=(n, 300)).astype(np.float32)
    # k = 10, t = 4: every client keeps at least 10 − 6 = 4 neighbours when 30% drop
    result = generator.simulate_round(updates, k=10, threshold=4, clip=1.0, round_id=9, name=f"prop/{stage}/{fraction}",
                                      dropped_after={stage: dropped})  # fmt: skip
    server = result["server"]
    expected = set(range(n)) - set(dropped) if stage != "masked_input" else set(range(n))
    assert set(server["survivors"]) == expected
    error = np.abs(np.array(server["sum"]) - np.clip(updates[sorted(expected)].astype(np.float64), -1, 1).sum(axis=0))
    assert error.max() <= server["error_bound"]


def test_generator_reproduces_the_committed_vectors(generator, vector):
    for name, content in generator.build().items():
        assert generator.dumps(content) == generator.dumps(vector(name)), f"{name} is stale: run generate.py"
