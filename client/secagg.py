"""A client's side of one SecAgg+ round (docs/secagg.md): keys, shares, the masked input, reveals.

    advertise  two fresh X25519 key pairs: c (seals share bundles), s (pairwise masks)
    share      split s_sk and the self-mask seed b among the neighbours, one sealed bundle each
    masked     quantise the update, add PRG(b) and ±PRG(s_ij) for neighbours that shared
    unmask     reveal, per neighbour, the share of b (it survived) or of s_sk (it dropped), never both

Each method builds the next request or takes the coordinator's reply; the session never sees
another client's plaintext, and the coordinator never sees this one's.

Before any key exists the session checks the plan's differential-privacy numbers against this
device's PrivacyFloor (docs/privacy.md, "What a device checks"), and refuses a plan that is
invalid or gives less: PlanRefused, which the agent handles like a round that moved on.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from fedge.client.transport import TransportError
from fedge.shared import secagg
from fedge.shared.nn import Weights
from fedge.shared.privacy import NoisePlanError, check_noise, clip_update, discrete_gaussian
from fedge.shared.proto import coordinator_pb2 as pb

log = logging.getLogger("fedge.secagg")


class PlanRefused(TransportError):
    """This device refuses a secure assignment: it masks in another byte format, or its DP numbers
    are invalid or under the device's floor.

    A TransportError with code FAILED_PRECONDITION, raised before any key is made or sent, so the
    agent forgets the round as one that moved on and checks in again later.
    """

    def __init__(self, message: str) -> None:
        super().__init__("FAILED_PRECONDITION", message)


@dataclass(frozen=True)
class PrivacyFloor:
    """The least privacy this device accepts from a secure round's on-device noise.

    ``min_noise_multiplier``: the noise multiplier z that this device's own noise must give over
    the plan's dp_min_clients (docs/privacy.md); 0 accepts plans without noise. Plans are validated
    whatever the floor.
    """

    min_noise_multiplier: float = 0.0

    def __post_init__(self) -> None:
        z = self.min_noise_multiplier
        if isinstance(z, bool) or not isinstance(z, int | float) or not math.isfinite(z) or z < 0:
            raise ValueError(f"min_noise_multiplier must be a finite number ≥ 0, got {z!r}")


NO_FLOOR = PrivacyFloor()


def refuse_unprotected(assignment: pb.Assignment, floor: PrivacyFloor) -> None:
    """PlanRefused for an assignment without secure aggregation when the device requires noise: its
    update would leave in the clear, with no noise the device can check (central DP at best)."""
    if floor.min_noise_multiplier and not assignment.HasField("secagg"):
        raise PlanRefused(
            f"round {assignment.round} of task {assignment.task_id!r} refused: it is not securely aggregated, "
            f"and this device requires on-device noise of multiplier ≥ {floor.min_noise_multiplier}"
        )


def update_size(assignment: pb.Assignment) -> int:
    """Coordinates of the update this assignment asks for: its trained tensors (all without ``trainable``)."""
    trained = set(assignment.trainable)
    return sum(math.prod(t.shape) for t in assignment.tensors if not trained or t.name in trained)


class SecAggSession:
    def __init__(self, assignment: pb.Assignment, credential: str, floor: PrivacyFloor = NO_FLOOR) -> None:
        """Refuses (PlanRefused) a plan whose DP numbers are invalid or under ``floor`` before any key is made."""
        self.assignment, self.credential = assignment, credential
        self.plan = assignment.secagg
        self.floor = floor
        self.dim = update_size(assignment)
        self.noise_multiplier = self._check_plan()  # what this device's noise gives; 0.0 without noise
        self.c = secagg.PrivateKey.generate()
        self.s = secagg.PrivateKey.generate()
        self.b = os.urandom(32)
        self.index: int | None = None
        self.peers: dict[int, pb.Peer] = {}
        self.bundles: dict[int, secagg.ShareBundle] = {}  # from neighbours that shared
        self._share_keys: dict[int, bytes] = {}
        self.revealed = False

    def _check_plan(self) -> float:
        p = self.plan
        if p.format != secagg.FORMAT:
            raise self._refused(
                f"the coordinator masks in secure aggregation format {p.format}, this client in format "
                f"{secagg.FORMAT} (docs/secagg.md); upgrade the older side"
            )
        try:
            return check_noise(
                clip=p.clip,
                max_clients=p.max_clients,
                dp_clip=p.dp_clip,
                client_stddev=p.dp_noise_stddev,
                min_clients=p.dp_min_clients,
                noise_multiplier=p.dp_noise_multiplier,
                dim=self.dim,
                floor=self.floor.min_noise_multiplier,
            )
        except NoisePlanError as error:
            raise self._refused(str(error)) from None

    def _refused(self, why: str) -> PlanRefused:
        a = self.assignment
        reason = f"round {a.round} of task {a.task_id!r} refused, no keys sent: {why}"
        log.warning("%s", reason)  # once a round: the agent then sits the round out
        return PlanRefused(reason)

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
        """The key sealing bundles between this client and ``peer``, both ways: agreed once."""
        if peer not in self._share_keys:
            shared = secagg.agree(self.c, secagg.PublicKey.from_bytes(self.peers[peer].encryption_key))
            self._share_keys[peer] = secagg.share_key(shared, self.assignment.round_id, self._me, peer)
        return self._share_keys[peer]

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
        if self.plan.dp_noise_stddev and flat.size != self.dim:  # the noise was checked for dim coordinates
            raise ValueError(f"expected an update of {self.dim} values, as the assignment's tensors, got {flat.size}")
        noise = discrete_gaussian(flat.size, self.plan.dp_noise_stddev, rng) if self.plan.dp_noise_stddev else None
        update = secagg.Quantizer(self.plan.clip, self.plan.max_clients).deferred(flat, rng, noise)
        pairs = []
        for j in sorted(self.bundles):  # neighbours that shared: exactly those that mask with us
            shared = secagg.agree(self.s, secagg.PublicKey.from_bytes(self.peers[j].mask_key))
            pairs.append(
                (secagg.pairwise_seed(shared, self.assignment.round_id, self._me, j), secagg.sign(self._me, j))
            )
        return secagg.mask(update, self.b, pairs)  # quantised by the threads that mask it

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
