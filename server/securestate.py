"""What a secure round keeps on disk, so that a restarted coordinator carries it on.

A secure round's clients hold keys for that round only, and its training stage is the long
one: a round lost to a restart costs every client its training. So the store keeps what the
protocol needs to go on (docs/secagg.md), and nothing more:

    roster    public keys, indices, the neighbour graph, the plan   when advertise closes
    bundles   the sealed share bundles the server relays            when share closes
    progress  the stage, who shared, who is in the sum, counts      with the sum, and stages
    sum       the running masked sum mod 2^32 (in one of the task's  every CHECKPOINT_S, and
              two sum files, which every secure round writes over)  when collecting ends
    reveals   the shares clients revealed for unmasking             with every unmask answer,
                                                                    appended to a file (below)

The sum is checkpointed into one of two files, and one transaction then names that file
current together with its members, so a process killed at any moment leaves a sum that
matches its member list. Not at every input: P values per input would be N·P bytes written
per round (400 MB for 100 clients at P = 1M), and the page-cache pressure slowed the whole
coordinator. An input that came after the last checkpoint is asked for again instead: its
client, asking to unmask, hears that its input is missing and resends the same bytes (a
second, different masked input under the same masks would reveal the difference of two
updates, so agents keep and resend the very bytes). A crash while keys are still advertised
loses only the key exchange: that round is retried. No plaintext update is ever written.

Revealed shares are appended to ``reveals.bin`` beside the sum, one record per answer (length,
CRC-32, then the holder and its shares), in one ``write`` before the answer leaves: a process
killed afterwards finds it in the file, as a commit in SQLite's WAL would be, for a few
microseconds instead of a transaction per client (0.75 ms each on a loaded machine).
A record cut short by a kill is dropped on resume: its client was never answered, and asks again.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from fedge.server.secagg import SecAggRound
from fedge.server.store import Store
from fedge.shared import secagg
from fedge.shared.proto import coordinator_pb2 as pb

PHASES = {"share": "share", "collect": "train", "unmask": "unmask"}  # secagg stage -> round phase
CHECKPOINT_S = 2.0  # how much of the collect stage a crash may lose (those clients resend)
REVEALS = "reveals.bin"
_RECORD = struct.Struct("<II")  # body length, CRC-32 of the body
_HOLDER = struct.Struct("<I")
_ENTRY = struct.Struct("<IBH")  # owner, is it a mask-key share, share length; the share follows


@dataclass
class SecureState:
    """Writes one secure round's state as it changes; ``resume`` reads it back after a restart."""

    store: Store
    round: SecAggRound
    sums: Path  # the task's folder of sum files (``Store.secure_sums``)
    counts: dict[str, Any] = field(default_factory=dict)  # the round's examples and metric sums
    buffers: list[np.ndarray] = field(default_factory=list)  # the sum's two files, memory-mapped
    current: int = 0  # the one holding the last checkpoint
    saved_at: float = field(default_factory=time.monotonic)

    def roster_closed(self) -> None:
        s = self.round
        keys = {c: [_b64(c_pk), _b64(s_pk)] for c, (c_pk, s_pk) in s.keys.items()}
        roster = {"plan": _b64(s.plan.SerializeToString()), "size": s.size, "keys": keys, "index": s.index}
        self.store.save_secure(s.round_id, roster=json.dumps({**roster, "graph": s.graph}), progress=self._progress())

    def shares_closed(self) -> None:
        """Share keys closed: the bundles still to be fetched, and an empty sum (no members: the
        sum files' old bytes are not read)."""
        s = self.round
        self._open_sum(create=True)
        self.store.secure_dir(s.round_id).mkdir(parents=True, exist_ok=True)  # for the reveals to come
        sealed = [bundle for senders in s.bundles.values() for bundle in senders.values()]
        blob = pb.ShareKeysResponse(shares=sealed).SerializeToString()  # the messages as they came
        self.store.save_secure(s.round_id, bundles=blob, progress=self._progress())
        self.saved_at = time.monotonic()

    def add_input(self, client_id: str, masked: np.ndarray, counts: dict[str, Any]) -> None:
        self.round.add_input(client_id, masked)
        self.counts = counts
        if time.monotonic() - self.saved_at >= CHECKPOINT_S:
            self.checkpoint()

    def checkpoint(self) -> None:
        """The sum into the spare file, then one transaction: that file is current, with its members."""
        assert self.round.total is not None
        spare = 1 - self.current
        np.copyto(self.buffers[spare], self.round.total)
        self.store.save_secure(self.round.round_id, progress=self._progress(current=spare))
        self.current, self.saved_at = spare, time.monotonic()

    def revealed(self, client_id: str, shares: list[pb.RevealedShare]) -> None:
        me = self.round.index[client_id]
        record = encode_reveals(me, [(r.owner, r.mask_key, bytes(r.share)) for r in shares])
        path = self.store.secure_dir(self.round.round_id) / REVEALS
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if os.write(fd, record) != len(record):  # a full disk: undo the torn record, fail the answer
                os.ftruncate(fd, size)
                raise OSError(f"round {self.round.round_id}: could not keep the shares client {me} revealed")
        finally:
            os.close(fd)

    def _progress(self, current: int | None = None) -> str:
        s = self.round
        return json.dumps({
            "stage": s.stage, "sharers": sorted(s.sharers), "inputs": sorted(s.inputs),
            "sum": self.current if current is None else current, **self.counts,
        })  # fmt: skip

    def _open_sum(self, create: bool) -> None:
        """The task's two sum files, memory-mapped. Each secure round writes over the last one's:
        the pages of a new file cost the kernel more than the copy into them (5 against 2 ms at
        P = 1M), so a round starts with stale bytes in both, and ``resume`` reads a file only once
        a checkpoint has named it current with members."""
        self.sums.mkdir(parents=True, exist_ok=True)
        paths = [self.sums / f"sum-{i}.u32" for i in (0, 1)]
        fits = all(path.exists() and path.stat().st_size == 4 * self.round.size for path in paths)
        mode = "r+" if fits or not create else "w+"
        self.buffers = [np.memmap(path, np.uint32, mode, shape=(self.round.size,)) for path in paths]

    @classmethod
    def resume(cls, store: Store, round_id: int, sums: Path) -> SecureState:
        """Rebuild the round from the store (ValueError, KeyError or OSError: it cannot go on)."""
        saved = store.load_secure(round_id)
        if saved is None or saved["roster"] is None or saved["progress"] is None:
            raise ValueError(f"round {round_id} has no saved secure state")
        roster, progress = json.loads(saved["roster"]), json.loads(saved["progress"])
        if progress["stage"] not in PHASES:
            raise ValueError(f"round {round_id} was saved at stage {progress['stage']!r}")
        plan = pb.SecAggPlan.FromString(base64.b64decode(roster["plan"]))
        s = SecAggRound(round_id, int(roster["size"]), plan, stage=progress["stage"])
        s.keys = {c: (base64.b64decode(a), base64.b64decode(b)) for c, (a, b) in roster["keys"].items()}
        s.index = {c: int(i) for c, i in roster["index"].items()}
        s.graph = [list(map(int, peers)) for peers in roster["graph"]]
        for bundle in _relayed(saved["bundles"]):
            s.bundles.setdefault(bundle.receiver, {})[bundle.sender] = bundle
        s.sharers, s.inputs = set(progress["sharers"]), set(progress["inputs"])
        counts = {k: v for k, v in progress.items() if k not in ("stage", "sharers", "inputs", "sum")}
        state = cls(store, s, sums, counts, current=int(progress["sum"]))
        if s.stage != "share":
            state._open_sum(create=False)
            s.total = np.array(state.buffers[state.current]) if s.inputs else np.zeros(s.size, np.uint32)
        reveals = store.secure_dir(round_id) / REVEALS
        for holder, owner, mask_key, share in decode_reveals(reveals.read_bytes() if reveals.exists() else b""):
            book = s.s_shares if mask_key else s.b_shares
            book.setdefault(owner, {})[holder + 1] = secagg.Share.from_bytes(share)
            s.revealers.add(holder)
        return state


def encode_reveals(holder: int, shares: list[tuple[int, bool, bytes]]) -> bytes:
    """One client's revealed shares, (owner, is the mask key, share), as one record of the log."""
    body = b"".join([_HOLDER.pack(holder), *(_ENTRY.pack(o, m, len(share)) + share for o, m, share in shares)])
    return _RECORD.pack(len(body), zlib.crc32(body)) + body


def decode_reveals(data: bytes) -> Iterator[tuple[int, int, bool, bytes]]:
    """(holder, owner, is the mask key, share) for every whole record; stops at a torn one."""
    offset = 0
    while offset + _RECORD.size <= len(data):
        length, crc = _RECORD.unpack_from(data, offset)
        body = data[offset + _RECORD.size : offset + _RECORD.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            return  # cut short by a kill: that client was never answered and asks again
        (holder,), at = _HOLDER.unpack_from(body), _HOLDER.size
        while at < length:
            owner, mask_key, size = _ENTRY.unpack_from(body, at)
            at += _ENTRY.size + size
            yield holder, owner, bool(mask_key), body[at - size : at]
        offset += _RECORD.size + length


def _relayed(blob: bytes | None) -> list[pb.EncryptedShare]:
    """The sealed bundles ``shares_closed`` kept (none before share keys closed)."""
    try:
        return list(pb.ShareKeysResponse.FromString(blob or b"").shares)
    except (DecodeError, TypeError) as error:
        raise ValueError(f"the saved share bundles cannot be read: {error}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
