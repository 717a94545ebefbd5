"""A client's side of one SecAgg+ round (docs/secagg.md): keys, shares, the masked input, reveals.

    advertise  two fresh X25519 key pairs: c (seals share bundles), s (pairwise masks)
    share      split s_sk and the self-mask seed b among the neighbours, one sealed bundle each
    masked     quantise the update, add PRG(b) and ±PRG(s_ij) for neighbours that shared
    unmask     reveal, per neighbour, the share of b (it survived) or of s_sk (it dropped), never both

Each method builds the next request or takes the coordinator's reply; the session never sees
another client's plaintext, and the coordinator never sees this one's.
"""

from __future__ import annotations

import os

import numpy as np

from fedge.shared import secagg
from fedge.shared.nn import Weights
from fedge.shared.privacy import clip_update, discrete_gaussian
from fedge.shared.proto import coordinator_pb2 as pb


class SecAggSession:
    def __init__(self, assignment: pb.Assignment, credential: str) -> None:
        self.assignment, self.credential = assignment, credential
        self.plan = assignment.secagg
        self.c = secagg.PrivateKey.generate()
        self.s = secagg.PrivateKey.generate()
        self.b = os.urandom(32)
        self.index: int | None = None
        self.peers: dict[int, pb.Peer] = {}
        self.bundles: dict[int, secagg.ShareBundle] = {}  # from neighbours that shared
        self.revealed = False

    def _ids(self) -> dict:
        return {"credential": self.credential, "task_id": self.assignment.task_id, "round_id": self.assignment.round_id}

    # -- advertise -----------------------------------------------------------------------------
    def advertise_request(self) -> pb.AdvertiseKeysRequest:
        return pb.AdvertiseKeysRequest(
            **self._ids(), encryption_key=self.c.public_bytes(), mask_key=self.s.public_bytes()
        )

    def take_roster(self, response: pb.AdvertiseKeysResponse) -> None:
        self.index = response.index
        self.peers = {p.index: p for p in response.neighbours}
        if len(self.peers) < self.plan.threshold - 1:
            raise ValueError(f"expected at least {self.plan.threshold - 1} neighbours, got {len(self.peers)}")

    # -- share ---------------------------------------------------------------------------------
    def _share_key(self, peer: int) -> bytes:
        shared = secagg.agree(self.c, secagg.PublicKey.from_bytes(self.peers[peer].encryption_key))
        return secagg.share_key(shared, self.assignment.round_id, self._me, peer)

    @property
    def _me(self) -> int:
        if self.index is None:
            raise RuntimeError("the roster has not arrived yet")
        return self.index

    def share_request(self) -> pb.ShareKeysRequest:
        xs = [j + 1 for j in sorted(self.peers)]
        s_shares = secagg.split(self.s.private_bytes(), self.plan.threshold, xs)
        b_shares = secagg.split(self.b, self.plan.threshold, xs)
        sealed = []
        for j, s_share, b_share in zip(sorted(self.peers), s_shares, b_shares, strict=True):
            bundle = secagg.ShareBundle(self._me, j, s_share, b_share)
            ciphertext = secagg.encrypt_bundle(self._share_key(j), self.assignment.round_id, bundle)
            sealed.append(pb.EncryptedShare(sender=self._me, receiver=j, ciphertext=ciphertext))
        return pb.ShareKeysRequest(**self._ids(), shares=sealed)

    def take_shares(self, response: pb.ShareKeysResponse) -> None:
        for sealed in response.shares:
            if sealed.receiver != self._me or sealed.sender not in self.peers:
                raise ValueError(
                    f"expected bundles for {self._me} from a neighbour, got {sealed.sender}→{sealed.receiver}"
                )
            key = self._share_key(sealed.sender)
            self.bundles[sealed.sender] = secagg.decrypt_bundle(
                key, self.assignment.round_id, sealed.sender, self._me, bytes(sealed.ciphertext)
            )

    # -- masked input ------------------------------------------------------------------------
    def masked_input(self, delta: Weights, rng: np.random.Generator) -> np.ndarray:
        """The quantised update, masked: 4 bytes per parameter.

        With differential privacy in the plan, the update is first clipped to L2 norm dp_clip and
        discrete Gaussian noise is added to its integers (docs/privacy.md): the coordinator only
        ever sees the noisy sum.
        """
        if self.plan.dp_clip:
            delta, _ = clip_update(delta, self.plan.dp_clip)
        flat = np.concatenate([d.ravel() for d in delta])
        quantized = secagg.Quantizer(self.plan.clip, self.plan.max_clients).quantize(flat, rng)
        if self.plan.dp_noise_stddev:
            noise = discrete_gaussian(quantized.shape, self.plan.dp_noise_stddev, rng)
            quantized = quantized + noise.astype(np.uint32)  # two's complement: wraps mod 2^32 like the masks
        pairs = []
        for j in sorted(self.bundles):  # neighbours that shared: exactly those that mask with us
            shared = secagg.agree(self.s, secagg.PublicKey.from_bytes(self.peers[j].mask_key))
            pairs.append(
                (secagg.pairwise_seed(shared, self.assignment.round_id, self._me, j), secagg.sign(self._me, j))
            )
        return secagg.mask(quantized, self.b, pairs)

    # -- unmask ----------------------------------------------------------------------------------
    def unmask_request(self, response: pb.UnmaskResponse) -> pb.UnmaskRequest:
        """Reveal for the neighbours the coordinator names; refuses to reveal both secrets of one,
        and refuses a second reveal in the same round (which could ask for the other secret)."""
        if self.revealed:
            raise secagg.RevealRefused(f"round {self.assignment.round_id}: shares were already revealed once")
        survivors = [j for j in response.survivors if j in self.bundles and j != self._me]
        dropped = [j for j in response.dropped if j in self.bundles]
        b_shares, s_shares = secagg.reveal(self.bundles, survivors, dropped)
        revealed = [pb.RevealedShare(owner=j, mask_key=False, share=sh.to_bytes()) for j, sh in b_shares.items()]
        revealed += [pb.RevealedShare(owner=j, mask_key=True, share=sh.to_bytes()) for j, sh in s_shares.items()]
        self.revealed = True
        return pb.UnmaskRequest(**self._ids(), shares=revealed)
