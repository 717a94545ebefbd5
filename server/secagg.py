"""The coordinator's side of a SecAgg+ round (docs/secagg.md): it relays, sums and unmasks.

    advertise  cohort members send two public keys; at close: U1, indices, the neighbour graph
    share      U1 members send sealed share bundles for their neighbours; at close: U2
    collect    U2 members upload quantised, masked updates, summed mod 2^32 as they arrive: U3
    unmask     U3 members reveal shares: of b for surviving neighbours, of s_sk for dropped ones
    result     self masks of U3 and pair masks with dropped clients removed: the plain sum

The server holds public keys, sealed bundles it cannot open, the running masked sum, and
revealed shares — never a client's plaintext update.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from fedge.server.errors import InvalidUpdate, NotFound, StaleRound
from fedge.shared import secagg
from fedge.shared.proto import coordinator_pb2 as pb

STAGES = ("advertise", "share", "collect", "unmask")


def automatic_neighbours(n: int) -> int:
    """k = 2·⌈2·log2 n⌉ (even: a ring with k/2 on each side), capped at the whole cohort.

    docs/secagg.md: with these and the threshold below, simulated rounds of 100–1000 clients
    almost always unmask at 30% dropouts, where k = 2·log2 n with a majority threshold fails.
    """
    k = 2 * max(1, math.ceil(2 * math.log2(max(n, 2))))
    return min(k, n - 1 + (n - 1) % 2)


def automatic_threshold(k: int, n: int) -> int:
    """t = ⌈d/3⌉ + 1 of a client's d neighbours: survives two thirds of them dropping, and an
    honest-but-curious server learns nothing unless t neighbours collude with it."""
    degree = min(k, n - 1)
    return max(2, math.ceil(degree / 3) + 1)


@dataclass
class SecAggRound:
    """Everything the server knows in one secure round, and what it does with it."""

    round_id: int
    size: int  # parameters
    plan: pb.SecAggPlan
    stage: str = "advertise"
    keys: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # U1: client -> (c_pk, s_pk)
    index: dict[str, int] = field(default_factory=dict)
    graph: list[list[int]] = field(default_factory=list)
    bundles: dict[int, dict[int, pb.EncryptedShare]] = field(default_factory=dict)  # receiver -> sender -> sealed
    sharers: set[int] = field(default_factory=set)  # U2
    total: np.ndarray | None = None
    inputs: set[int] = field(default_factory=set)  # U3
    b_shares: dict[int, dict[int, secagg.Share]] = field(default_factory=dict)  # owner -> x -> share
    s_shares: dict[int, dict[int, secagg.Share]] = field(default_factory=dict)
    revealers: set[int] = field(default_factory=set)  # U4
    lost: set[int] = field(default_factory=set)  # members back with other keys (restarted): they can add nothing
    _peers: dict[int, pb.Peer] = field(default_factory=dict, repr=False)  # U1 by index, as the roster sends them

    # -- advertise ---------------------------------------------------------------------------
    def advertise(self, client_id: str, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse | None:
        """Record the keys while the stage is open (None: ask again); afterwards, the roster."""
        if self.stage == "advertise":
            for key in (request.encryption_key, request.mask_key):
                if len(key) != 32:
                    raise InvalidUpdate(f"expected 32-byte X25519 public keys, got {len(key)} bytes")
            self.keys[client_id] = (bytes(request.encryption_key), bytes(request.mask_key))
            return None
        if client_id not in self.index:
            raise StaleRound(f"round {self.round_id}: keys were not advertised in time")
        if self.keys[client_id] != (request.encryption_key, request.mask_key):
            self.lost.add(self.index[client_id])  # its masked input, if not sent yet, and its shares are gone
            raise StaleRound(f"round {self.round_id}: this client advertised other keys earlier (a restart?)")
        me = self.index[client_id]
        if len(self._peers) != len(self.index):  # built once per round (also after a resume)
            keys = {i: self.keys[c] for c, i in self.index.items()}
            self._peers = {i: pb.Peer(index=i, encryption_key=c_pk, mask_key=s_pk) for i, (c_pk, s_pk) in keys.items()}
        return pb.AdvertiseKeysResponse(index=me, neighbours=[self._peers[j] for j in self.graph[me]])

    def close_advertise(self) -> None:
        members = sorted(self.keys)
        self.index = {client: i for i, client in enumerate(members)}
        n = len(members)
        self.graph = secagg.neighbours(n, self.plan.neighbours, os.urandom(32)) if n > 1 else [[]]
        self.stage = "share"

    # -- share ---------------------------------------------------------------------------------
    def share(self, client_id: str, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse | None:
        me = self._index(client_id)
        if self.stage == "share":
            expected = self.graph[me]
            received = {s.receiver: s for s in request.shares if s.sender == me}
            if len(received) != len(request.shares) or sorted(received) != expected:
                got = sorted((s.sender, s.receiver) for s in request.shares)
                raise InvalidUpdate(f"expected one bundle from {me} to each of {expected}, got (from, to) {got}")
            for receiver, sealed in received.items():  # the messages themselves: relayed as they came
                self.bundles.setdefault(receiver, {})[me] = sealed
            self.sharers.add(me)
            return None
        if me not in self.sharers:
            raise StaleRound(f"round {self.round_id}: shares were not sent in time")
        mine = self.bundles.get(me, {})
        return pb.ShareKeysResponse(shares=[mine[j] for j in sorted(mine) if j in self.sharers])

    def close_share(self) -> None:
        self.stage = "collect"
        self.total = np.zeros(self.size, np.uint32)

    # -- masked input ------------------------------------------------------------------------
    def expects_input(self, client_id: str) -> bool:
        return self.stage == "collect" and self.index.get(client_id) in self.sharers

    def check_input(self, client_id: str) -> int:
        """The client's index, if its masked input is due now."""
        me = self._index(client_id)
        if self.stage != "collect" or me not in self.sharers:
            raise StaleRound(f"round {self.round_id} is not collecting masked inputs from client {me}")
        if me in self.inputs:
            raise InvalidUpdate(f"client {me} already sent its masked input")
        return me

    def add_input(self, client_id: str, masked: np.ndarray) -> None:
        me = self.check_input(client_id)
        assert self.total is not None
        self.total += masked  # uint32: wraps mod 2^32, as the masks need
        self.inputs.add(me)

    def awaited_inputs(self) -> int:
        """The masked inputs this round can still end up with: those in, and those of sharers that
        have not come back restarted."""
        return len(self.sharers) - len((self.lost & self.sharers) - self.inputs)  # lost: usually empty

    def close_collect(self) -> None:
        self.stage = "unmask"

    # -- unmask --------------------------------------------------------------------------------
    @property
    def dropped(self) -> set[int]:
        return self.sharers - self.inputs

    def unmask(self, client_id: str, request: pb.UnmaskRequest) -> pb.UnmaskResponse | None:
        me = self._index(client_id)
        if self.stage == "collect" and me in self.sharers and me not in self.inputs:
            # it sent its masked input (it asks to unmask), but a restart lost it: the same bytes again
            raise NotFound(f"round {self.round_id}: no masked input from client {me} (the coordinator restarted)")
        if self.stage in ("advertise", "share", "collect"):
            return None
        if me not in self.inputs:
            raise StaleRound(
                f"round {self.round_id}: client {me} sent no masked input, so it takes no part in unmasking"
            )
        if request.shares:
            self._take_reveals(me, request.shares)
            return pb.UnmaskResponse(done=True)
        return pb.UnmaskResponse(dropped=sorted(self.dropped), survivors=sorted(self.inputs))

    def _take_reveals(self, me: int, shares: list[pb.RevealedShare]) -> None:
        neighbours, dropped = set(self.graph[me]), self.dropped
        for revealed in shares:
            owner = revealed.owner
            wanted = dropped if revealed.mask_key else self.inputs
            if owner not in neighbours or owner not in wanted or owner == me:
                kind = "mask-key" if revealed.mask_key else "self-mask"
                raise InvalidUpdate(f"client {me} may not reveal a {kind} share of client {owner}")
            share = secagg.Share.from_bytes(bytes(revealed.share))
            if share.x != me + 1:
                raise InvalidUpdate(f"expected a share with x = {me + 1}, got x = {share.x}")
            book = self.s_shares if revealed.mask_key else self.b_shares
            book.setdefault(owner, {})[share.x] = share
        self.revealers.add(me)

    def forget(self, client_id: str) -> None:
        """A member whose masked input is in checks in again, so it lost its session (a restart):
        it will reveal no shares. One that has revealed already is not counted out."""
        me = self.index.get(client_id)
        if me in self.inputs and me not in self.revealers:
            self.lost.add(me)

    def no_more_reveals(self) -> bool:
        """Every survivor has revealed its shares or come back restarted, without them."""
        return self.inputs <= self.revealers | self.lost

    def can_finish(self) -> bool:
        t = self.plan.threshold
        enough_b = all(len(self.b_shares.get(u, {})) >= t for u in self.inputs)
        return enough_b and all(len(self.s_shares.get(v, {})) >= t for v in self.dropped)

    def unmasked_sum(self) -> np.ndarray:
        """The sum of the survivors' quantised updates, every mask removed."""
        assert self.total is not None
        t = self.plan.threshold
        seeds = secagg.combine_many([list(self.b_shares[u].values()) for u in sorted(self.inputs)], t)
        total = secagg.remove_self_masks(self.total, seeds)
        mask_keys = {c: self.keys[c][1] for c in self.index}
        by_index = {i: c for c, i in self.index.items()}
        pairs = []
        dropped = sorted(self.dropped)
        secrets = secagg.combine_many([list(self.s_shares[v].values()) for v in dropped], t)
        for v, secret in zip(dropped, secrets, strict=True):
            private = secagg.PrivateKey.from_bytes(secret)
            for u in self.graph[v]:
                if u in self.inputs:
                    shared = secagg.agree(private, secagg.PublicKey.from_bytes(mask_keys[by_index[u]]))
                    pairs.append((secagg.pairwise_seed(shared, self.round_id, u, v), secagg.sign(u, v)))
        return secagg.remove_pair_masks(total, pairs)

    def _index(self, client_id: str) -> int:
        if client_id not in self.index:
            raise StaleRound(f"round {self.round_id}: client is not part of this secure round")
        return self.index[client_id]
