"""Writes the SecAgg golden vectors from fixed keys, seeds and rngs (docs/secagg.md is the spec).

    .venv/bin/python tests/vectors/secagg/generate.py          rewrite the JSON files
    .venv/bin/python tests/vectors/secagg/generate.py --check  exit 1 if a file differs from what this writes

Every "random" input is fixed: 32-byte values are SHA-256("fedge/secagg/vectors/" + name); Shamir
coefficients are read from the AES-CTR keystream of a recorded seed (KeystreamRng); rounding draws
come from numpy PCG64 with a fixed seed and are written into the files, so another implementation
replays them without numpy. ``simulate_round`` is the reference composition of a whole round; the
property tests run it too.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from fedge.shared.secagg import kdf, prg, shares
from fedge.shared.secagg.graph import neighbours
from fedge.shared.secagg.keys import PrivateKey, agree
from fedge.shared.secagg.masking import mask, remove_pair_masks, remove_self_masks, sign
from fedge.shared.secagg.quantize import Quantizer
from fedge.shared.secagg.shamir import Share, combine, lagrange_at_zero, split

HERE = Path(__file__).parent
STAGES = ("advertise_keys", "share_keys", "masked_input", "unmask")


def fixed(name: str) -> bytes:
    return hashlib.sha256(b"fedge/secagg/vectors/" + name.encode()).digest()


class KeystreamRng:
    """``rng(n)`` for shamir.split: the AES-CTR keystream of ``seed``, read in order."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.offset = seed, 0

    def __call__(self, n: int) -> bytes:
        out = prg.keystream(self.seed, self.offset + n)[self.offset :]
        self.offset += n
        return out


def floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values).reshape(-1)]


def ints(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


# ---------------------------------------------------------------- one file per primitive


def keys_vectors() -> dict[str, Any]:
    a, b = PrivateKey.from_bytes(fixed("keys/a")), PrivateKey.from_bytes(fixed("keys/b"))
    rfc_a = PrivateKey.from_bytes(bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    rfc_b = PrivateKey.from_bytes(bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
    return {
        "description": "X25519 raw 32-byte keys; agree(a, B) == agree(b, A). Low-order peers are refused.",
        "agreements": [
            {
                "name": name,
                "private_a": x.private_bytes().hex(),
                "public_a": x.public_bytes().hex(),
                "private_b": y.private_bytes().hex(),
                "public_b": y.public_bytes().hex(),
                "shared_secret": agree(x, y.public_key()).hex(),
            }
            for name, x, y in (("fixed", a, b), ("rfc7748-6.1", rfc_a, rfc_b))
        ],
        "refused_peers": [
            {"private": a.private_bytes().hex(), "peer_public": "00" * 32, "why": "u = 0: all-zero shared secret"},
            {"private": a.private_bytes().hex(), "peer_public": "01" + "00" * 31, "why": "u = 1: all-zero secret"},
        ],
    }


def kdf_vectors() -> dict[str, Any]:
    secret = agree(PrivateKey.from_bytes(fixed("keys/a")), PrivateKey.from_bytes(fixed("keys/b")).public_key())
    cases = []
    for label in kdf.LABELS:
        for round_id, i, j in ((7, 1, 3), (2**40 + 5, 9, 2)):
            cases.append(
                {
                    "label": label.decode(),
                    "round_id": round_id,
                    "i": i,
                    "j": j,
                    "info": kdf.info(label, round_id, i, j).hex(),
                    "okm": kdf.derive(secret, label, round_id, i, j).hex(),
                }
            )
    return {
        "description": "HKDF-SHA256(ikm=shared_secret, salt, info=label | round u64 BE | min u16 BE | max u16 BE)",
        "shared_secret": secret.hex(),
        "salt": kdf.SALT.hex(),
        "cases": cases,
    }


def _bundle(sender: int, receiver: int, name: str) -> shares.ShareBundle:
    xs, rng = [receiver + 1, receiver + 2], KeystreamRng(fixed(f"{name}/rng"))
    s_share = split(fixed(f"{name}/s_sk"), 2, xs, rng)[0]
    b_share = split(fixed(f"{name}/b"), 2, xs, rng)[0]
    return shares.ShareBundle(sender, receiver, s_share, b_share)


def shares_vectors() -> dict[str, Any]:
    sender, receiver, round_id = 2, 5, 7
    c_sender, c_receiver = PrivateKey.from_bytes(fixed("shares/c/2")), PrivateKey.from_bytes(fixed("shares/c/5"))
    secret = agree(c_sender, c_receiver.public_key())
    key = kdf.share_key(secret, round_id, sender, receiver)
    bundle = _bundle(sender, receiver, "shares")
    ciphertext = shares.encrypt_bundle(key, round_id, bundle)
    tampered = bytearray(ciphertext)
    tampered[20] ^= 0x01
    return {
        "description": "AES-256-GCM share bundle; nonce = aad = round u64 BE || sender u16 BE || receiver u16 BE",
        "sender_c_private": c_sender.private_bytes().hex(),
        "receiver_c_private": c_receiver.private_bytes().hex(),
        "shared_secret": secret.hex(),
        "round_id": round_id,
        "sender": sender,
        "receiver": receiver,
        "key": key.hex(),
        "nonce": shares.nonce(round_id, sender, receiver).hex(),
        "aad": shares.nonce(round_id, sender, receiver).hex(),
        "s_share": bundle.s_share.to_bytes().hex(),
        "b_share": bundle.b_share.to_bytes().hex(),
        "plaintext": bundle.to_bytes().hex(),
        "ciphertext": ciphertext.hex(),
        "refused": [
            {
                "why": "one bit of the ciphertext flipped",
                "round_id": round_id,
                "sender": sender,
                "receiver": receiver,
                "ciphertext": bytes(tampered).hex(),
            },
            {
                "why": "opened as if sent to another receiver",
                "round_id": round_id,
                "sender": sender,
                "receiver": receiver + 1,
                "ciphertext": ciphertext.hex(),
            },
            {
                "why": "opened in another round",
                "round_id": round_id + 1,
                "sender": sender,
                "receiver": receiver,
                "ciphertext": ciphertext.hex(),
            },
        ],
    }


def prg_vectors() -> dict[str, Any]:
    cases = []
    for name, seed in (("zeros", bytes(32)), ("counting", bytes(range(32))), ("fixed", fixed("prg"))):
        long = prg.expand(seed, 1_240_000)
        cases.append(
            {
                "name": name,
                "seed": seed.hex(),
                "keystream_64": prg.keystream(seed, 64).hex(),
                "first_16": ints(prg.expand(seed, 16)),
                "count_1240000_sha256": hashlib.sha256(long.astype("<u4").tobytes()).hexdigest(),
                "count_1240000_last": int(long[-1]),
            }
        )
    return {
        "description": (
            "AES-256-CTR(key=seed) keystream as LE uint32; segment s (65536 values) under the counter blocks "
            "s as 12 bytes BE | 2 + j as 4 bytes BE: AES-256-GCM's keystream with nonce s"
        ),
        "cases": cases,
    }


def shamir_vectors() -> dict[str, Any]:
    secret, threshold, xs = fixed("shamir/secret"), 3, [1, 2, 3, 4, 5]
    rng_seed = fixed("shamir/rng")
    coefficients = [
        int.from_bytes(KeystreamRng(rng_seed)(66 * 2)[66 * m : 66 * (m + 1)], "big") & ((1 << 521) - 1)
        for m in range(threshold - 1)
    ]
    parts = split(secret, threshold, xs, KeystreamRng(rng_seed))
    subsets = [[0, 1, 2], [4, 2, 0], [1, 3, 4]]
    max_secret = b"\xff" * 32
    max_parts = split(max_secret, 4, [65535, 1, 300, 40000], KeystreamRng(fixed("shamir/rng-max")))
    return {
        "description": "Shamir over p = 2^521 - 1; share = x u16 BE | y 66 B BE; coefficients: keystream of rng_seed",
        "prime_hex": format((1 << 521) - 1, "x"),
        "splits": [
            {
                "secret": secret.hex(),
                "threshold": threshold,
                "xs": xs,
                "rng_seed": rng_seed.hex(),
                "coefficients": [c.to_bytes(66, "big").hex() for c in coefficients],
                "shares": [p.to_bytes().hex() for p in parts],
                "combinations": [
                    {
                        "shares": [parts[i].to_bytes().hex() for i in subset],
                        "lagrange": [
                            w.to_bytes(66, "big").hex() for w in lagrange_at_zero(tuple(xs[i] for i in subset))
                        ],
                        "secret": combine([parts[i] for i in subset], threshold).hex(),
                    }
                    for subset in subsets
                ],
                "too_few": [parts[0].to_bytes().hex(), parts[3].to_bytes().hex()],
            },
            {
                "secret": max_secret.hex(),
                "threshold": 4,
                "xs": [65535, 1, 300, 40000],
                "rng_seed": fixed("shamir/rng-max").hex(),
                "shares": [p.to_bytes().hex() for p in max_parts],
                "combinations": [{"shares": [p.to_bytes().hex() for p in max_parts], "secret": max_secret.hex()}],
                "too_few": [p.to_bytes().hex() for p in max_parts[:3]],
            },
        ],
    }


def quantize_vectors() -> dict[str, Any]:
    quantizer = Quantizer(clip=1.0, n_clients=3)
    x = np.array([-1.5, -1.0, -0.25, 0.0, 1e-7, 0.3333333432674408, 0.999, 1.0, 2.0, -0.7, 1.0, 2.0], dtype=np.float32)
    updates = np.random.default_rng(11).normal(0, 0.6, size=(3, 6)).astype(np.float32)
    uniforms = np.random.default_rng(12).random((3, 6))
    quantised = np.stack([quantizer.quantize_with(u, r) for u, r in zip(updates, uniforms, strict=True)])
    total = quantised.sum(axis=0, dtype=np.uint32)
    clipped_sum = np.clip(updates.astype(np.float64), -1.0, 1.0).sum(axis=0)
    # the last two: the clip with the largest draw below 1, which must not round past L
    uniforms_x = np.append(np.random.default_rng(10).random(x.size - 2), [np.nextafter(1.0, 0.0)] * 2)
    return {
        "description": "bits = 32 - bitlen(n - 1); L = 2^bits - 1; H = L / 2; q = floor(s + u (1 - 2^-20)); "
        "s = min(max(x (L / (2 clip)), -H), H) + H",
        "clip": quantizer.clip,
        "n_clients": quantizer.n_clients,
        "bits": quantizer.bits,
        "levels": quantizer.levels,
        "values": {"x": floats(x), "uniforms": floats(uniforms_x), "q": ints(quantizer.quantize_with(x, uniforms_x))},
        "sum": {
            "updates": [floats(u) for u in updates],
            "uniforms": [floats(u) for u in uniforms],
            "quantized": [ints(q) for q in quantised],
            "total": ints(total),
            "count": 3,
            "dequantized": floats(quantizer.dequantize_sum(total, 3)),
            "clipped_sum": floats(clipped_sum),
            "error_bound": quantizer.error_bound(3),
        },
    }


def graph_vectors() -> dict[str, Any]:
    cases = []
    for n, k, name in ((10, 4, "graph/a"), (12, 6, "graph/b"), (7, 2, "graph/c"), (5, 4, "graph/d"), (9, 8, "graph/e")):
        seed = fixed(name)
        keys = ints(prg.expand(seed, n))
        ring = sorted(range(n), key=lambda c: (keys[c], c))
        cases.append(
            {"n": n, "k": k, "seed": seed.hex(), "keys": keys, "ring": ring, "neighbours": neighbours(n, k, seed)}
        )
    return {
        "description": "Harary ring over clients sorted by (expand(seed, n)[c], c); complete graph when k >= n - 1",
        "cases": cases,
    }


def masking_vectors() -> dict[str, Any]:
    values = np.array([0, 1, 2**31, 2**32 - 1, 12345, 7, 99, 2**20], dtype=np.uint32)
    self_seed = fixed("masking/b")
    pair_seeds = [(fixed("masking/s03"), sign(0, 3)), (fixed("masking/s01"), sign(2, 1))]
    masked = mask(values, self_seed, pair_seeds)
    return {
        "description": "masked = values + expand(b) + sum(sign * expand(seed)) mod 2^32",
        "values": ints(values),
        "self_seed": self_seed.hex(),
        "pair_seeds": [{"seed": s.hex(), "sign": d} for s, d in pair_seeds],
        "masked": ints(masked),
        "without_self_mask": ints(remove_self_masks(masked, [self_seed])),
        "without_any_mask": ints(remove_pair_masks(remove_self_masks(masked, [self_seed]), pair_seeds)),
    }


# ---------------------------------------------------------------- a whole round


class Client:
    """One client's fixed secrets for a round: two X25519 keys, the self-mask seed b, the Shamir rng seed."""

    def __init__(self, name: str, index: int) -> None:
        self.index = index
        self.c = PrivateKey.from_bytes(fixed(f"{name}/{index}/c"))
        self.s = PrivateKey.from_bytes(fixed(f"{name}/{index}/s"))
        self.b = fixed(f"{name}/{index}/b")
        self.share_rng_seed = fixed(f"{name}/{index}/share-rng")

    def share_key(self, peer: Client, round_id: int) -> bytes:
        return kdf.share_key(agree(self.c, peer.c.public_key()), round_id, self.index, peer.index)

    def pairwise_seed(self, peer: Client, round_id: int) -> bytes:
        return kdf.pairwise_seed(agree(self.s, peer.s.public_key()), round_id, self.index, peer.index)


class Round:
    """The reference composition of one round; each stage method returns that stage's messages.

    ``dropped_after[stage]`` lists clients that did that stage and then went silent.
    """

    def __init__(
        self,
        updates: np.ndarray,
        uniforms: np.ndarray,
        *,
        k: int,
        threshold: int,
        clip: float,
        round_id: int,
        name: str,
        dropped_after: dict[str, Collection[int]],
    ) -> None:
        self.updates, self.uniforms, self.k, self.threshold, self.round_id = updates, uniforms, k, threshold, round_id
        n = updates.shape[0]
        self.quantizer = Quantizer(clip, n)
        self.clients = [Client(name, i) for i in range(n)]
        self.graph_seed = fixed(f"{name}/graph")
        self.graph = neighbours(n, k, self.graph_seed)
        self.dropped_after = {stage: sorted(dropped_after.get(stage, ())) for stage in STAGES[:3]}
        gone: set[int] = set()
        self.alive: dict[str, list[int]] = {}
        for stage in STAGES:
            self.alive[stage] = [i for i in range(n) if i not in gone]
            gone |= set(self.dropped_after.get(stage, ()))
        self.sealed: dict[tuple[int, int], bytes] = {}
        self.inbox: dict[int, dict[int, shares.ShareBundle]] = {}
        self.masked: dict[int, np.ndarray] = {}
        self.answers: dict[int, tuple[dict[int, Share], dict[int, Share]]] = {}

    def advertise_keys(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "c_public": self.clients[i].c.public_bytes().hex(),
                "s_public": self.clients[i].s.public_bytes().hex(),
            }
            for i in self.alive["advertise_keys"]
        ]

    def share_keys(self) -> list[dict[str, Any]]:
        """Each client splits s_sk, then b, among its neighbours that are still here, in ascending order."""
        messages = []
        for i in self.alive["share_keys"]:
            sender = self.clients[i]
            peers = [j for j in self.graph[i] if j in self.alive["share_keys"]]
            rng, xs = KeystreamRng(sender.share_rng_seed), [j + 1 for j in peers]
            s_parts = split(sender.s.private_bytes(), self.threshold, xs, rng)
            b_parts = split(sender.b, self.threshold, xs, rng)
            for j, s_part, b_part in zip(peers, s_parts, b_parts, strict=True):
                key, bundle = sender.share_key(self.clients[j], self.round_id), shares.ShareBundle(i, j, s_part, b_part)
                self.sealed[i, j] = shares.encrypt_bundle(key, self.round_id, bundle)
                messages.append(
                    {
                        "sender": i,
                        "receiver": j,
                        "key": key.hex(),
                        "plaintext": bundle.to_bytes().hex(),
                        "ciphertext": self.sealed[i, j].hex(),
                    }
                )
        return messages

    def masked_input(self) -> list[dict[str, Any]]:
        """Pairwise masks with exactly the neighbours whose bundles arrived (they hold our shares)."""
        messages = []
        for i in self.alive["masked_input"]:
            me = self.clients[i]
            senders = [j for j in self.graph[i] if (j, i) in self.sealed]
            self.inbox[i] = {
                j: shares.decrypt_bundle(
                    me.share_key(self.clients[j], self.round_id), self.round_id, j, i, self.sealed[j, i]
                )
                for j in senders
            }
            pairs = [(me.pairwise_seed(self.clients[j], self.round_id), sign(i, j)) for j in senders]
            q = self.quantizer.quantize_with(self.updates[i], self.uniforms[i])
            self.masked[i] = mask(q, me.b, pairs)
            seeds = [{"peer": j, "sign": d, "seed": s.hex()} for j, (s, d) in zip(senders, pairs, strict=True)]
            messages.append({"index": i, "quantized": ints(q), "pair_seeds": seeds, "masked": ints(self.masked[i])})
        return messages

    def unmask(self) -> list[dict[str, Any]]:
        """Survivors sent a masked input; the dropped shared keys but sent none."""
        messages = []
        for i in self.alive["unmask"]:
            survivors = [j for j in self.inbox[i] if j in self.masked]
            dropped = [j for j in self.inbox[i] if j not in self.masked]
            self.answers[i] = shares.reveal(self.inbox[i], survivors, dropped)
            b_shares, s_shares = ({str(j): sh.to_bytes().hex() for j, sh in part.items()} for part in self.answers[i])
            messages.append(
                {"index": i, "survivors": survivors, "dropped": dropped, "b_shares": b_shares, "s_shares": s_shares}
            )
        return messages

    def _revealed(self, owner: int, kind: int) -> list[Share]:
        """The shares of ``owner``'s b (kind 0) or s_sk (kind 1), in ascending order of holder."""
        return [self.answers[j][kind][owner] for j in sorted(self.answers) if owner in self.answers[j][kind]]

    def server(self) -> dict[str, Any]:
        survivors = sorted(self.masked)
        lost = sorted(set(self.alive["share_keys"]) - set(survivors))
        total = np.sum([self.masked[i] for i in survivors], axis=0, dtype=np.uint32)
        b_seeds = {i: combine(self._revealed(i, 0), self.threshold) for i in survivors}
        s_keys = {d: PrivateKey.from_bytes(combine(self._revealed(d, 1), self.threshold)) for d in lost}
        removed = []
        for d in lost:
            for j in (j for j in self.graph[d] if j in self.masked and (d, j) in self.sealed):
                secret = agree(s_keys[d], self.clients[j].s.public_key())
                removed.append((j, d, kdf.pairwise_seed(secret, self.round_id, j, d), sign(j, d)))
        unmasked = remove_pair_masks(remove_self_masks(total, b_seeds.values()), [(s, g) for _, _, s, g in removed])
        clip = self.quantizer.clip
        return {
            "survivors": survivors,
            "dropped": lost,
            "masked_sum": ints(total),
            "b": {str(i): b.hex() for i, b in b_seeds.items()},
            "s_private": {str(d): key.private_bytes().hex() for d, key in s_keys.items()},
            "removed_pair_masks": [{"survivor": j, "dropped": d, "sign": g, "seed": s.hex()} for j, d, s, g in removed],
            "total": ints(unmasked),
            "sum": floats(self.quantizer.dequantize_sum(unmasked, len(survivors))),
            "clipped_sum": floats(np.clip(self.updates[survivors].astype(np.float64), -clip, clip).sum(axis=0)),
            "error_bound": self.quantizer.error_bound(len(survivors)),
        }

    def transcript(self) -> dict[str, Any]:
        p = self.quantizer
        clients = [
            {
                "index": c.index,
                "c_private": c.c.private_bytes().hex(),
                "s_private": c.s.private_bytes().hex(),
                "b": c.b.hex(),
                "share_rng_seed": c.share_rng_seed.hex(),
                "update": floats(self.updates[c.index]),
                "uniforms": floats(self.uniforms[c.index]),
            }
            for c in self.clients
        ]
        return {
            "parameters": {
                "round_id": self.round_id,
                "n": p.n_clients,
                "k": self.k,
                "threshold": self.threshold,
                "clip": p.clip,
                "bits": p.bits,
                "parameters": self.updates.shape[1],
            },
            "graph_seed": self.graph_seed.hex(),
            "neighbours": self.graph,
            "clients": clients,
            "dropped_after": self.dropped_after,
            **{stage: getattr(self, stage)() for stage in STAGES},
            "server": self.server(),
        }


def simulate_round(
    updates: np.ndarray,
    *,
    name: str,
    uniforms: np.ndarray | None = None,
    dropped_after: dict[str, Collection[int]] | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """Every message of one round and the server's result; ``parameters``: k, threshold, clip, round_id."""
    if uniforms is None:
        uniforms = np.random.default_rng(int.from_bytes(fixed(f"{name}/uniforms")[:8], "big")).random(updates.shape)
    return Round(updates, uniforms, name=name, dropped_after=dropped_after or {}, **parameters).transcript()


def round_vectors(dropped_after: dict[str, Collection[int]] | None, name: str) -> dict[str, Any]:
    updates = np.random.default_rng(21).normal(0, 0.4, size=(5, 8)).astype(np.float32)
    updates[0, 0] = 1.75  # clipped
    uniforms = np.random.default_rng(22).random((5, 8))
    transcript = simulate_round(
        updates, k=4, threshold=3, clip=1.0, round_id=42, name=name, dropped_after=dropped_after, uniforms=uniforms
    )
    what = "client 4 drops after share keys" if dropped_after else "nobody drops"
    return {"description": f"one round of 5 clients, k=4, t=3, 8 parameters: {what}", **transcript}


def build() -> dict[str, Any]:
    return {
        "keys.json": keys_vectors(),
        "kdf.json": kdf_vectors(),
        "shares.json": shares_vectors(),
        "prg.json": prg_vectors(),
        "shamir.json": shamir_vectors(),
        "quantize.json": quantize_vectors(),
        "graph.json": graph_vectors(),
        "masking.json": masking_vectors(),
        "round-no-dropout.json": round_vectors(None, "round"),
        "round-one-dropout.json": round_vectors({"share_keys": [4]}, "round"),
    }


def dumps(value: Any, indent: int = 0) -> str:
    """JSON with lists of scalars kept on one line, so the files read well and diff well."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}" if items else "{}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return "[\n" + ",\n".join(pad + dumps(v, indent + 1) for v in value) + "\n" + "  " * indent + "]"
    return json.dumps(value)


def main(argv: list[str]) -> int:
    stale = []
    for filename, content in build().items():
        path, text = HERE / filename, dumps(content) + "\n"
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
        else:
            path.write_text(text)
    if stale:
        print(f"stale vectors (run generate.py): {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
