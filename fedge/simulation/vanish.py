"""Simulated dropouts over real processes: ``fedge simulate --backend grpc --secagg --dropout F``.

A client drawn to vanish in a round at a stage exits abruptly (``os._exit``: no goodbye, no
cleanup, its sockets simply close) right before it would send that stage's first request:

    advertise  ``AdvertiseKeys``, its public keys never arrive
    share      ``ShareKeys``, its share bundles never arrive
    train      ``DownloadModel``, the first request of the masked-input stage: its masked
               input never arrives (where the in-process backend skips the client too)
    unmask     ``Unmask``, it reveals none of the shares it holds

The coordinator learns of it the way it would in a deployment, by the stage's deadline, and
unmasks the sum with the survivors. The runner (``loopback.run_rounds``) then starts the agent
again on the same data folder, so with its saved credential: the population does not shrink
round after round, as it does not on the in-process backend (where a vanished client comes
back fresh for the next round). The replacement must sit out the round its predecessor left:
the coordinator still counts it in that round's cohort and would hand it the same assignment,
and new keys in an old round would spoil its neighbours' share bundles. So it answers its own
agent "come back shortly" while the coordinator offers that round, and joins the next one.

The agent itself knows nothing of this: a ``Transport`` wrapper does it, installed by ``wrap``
only when the process was started with the ``FEDGE_SIMULATION_VANISH`` environment variable
(the runner sets it; ``fedge client`` has no option for it). This module imports nothing of the
coordinator: ``fedge client`` imports it on devices too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedge.shared.proto import coordinator_pb2 as pb

ENV = "FEDGE_SIMULATION_VANISH"
EXIT_CODE = 97  # what a vanished client exits with: the runner replaces it instead of failing the run
# The stage a client vanishes at -> the request it never sends (the in-process SECURE_STAGES).
RPC = {"advertise": "advertise_keys", "share": "share_keys", "train": "download_model", "unmask": "unmask"}
SIT_OUT_MS = 250  # a replacement asks again this soon while the coordinator still offers the old round

log = logging.getLogger("fedge.simulation.vanish")


@dataclass(frozen=True)
class Orders:
    """What one client process is told: when to vanish, where to say so, which round to sit out."""

    plan: dict[int, str] = field(default_factory=dict)  # round number -> stage
    marker: str = ""  # written just before vanishing: {"round", "round_id", "stage", "rpc"}
    sit_out: int = 0  # a round id (not a number) this process must not take part in; 0: none

    def to_env(self) -> str:
        return json.dumps({"plan": {str(k): v for k, v in self.plan.items()}, "marker": self.marker,
                           "sit_out": self.sit_out})  # fmt: skip

    @classmethod
    def from_env(cls, value: str) -> Orders:
        orders = json.loads(value)
        plan = {int(k): str(v) for k, v in orders.get("plan", {}).items()}
        unknown = sorted(set(plan.values()) - set(RPC))
        if unknown:
            raise ValueError(f"{ENV}: expected stages among {', '.join(RPC)}, got {', '.join(unknown)}")
        return cls(plan, str(orders.get("marker", "")), int(orders.get("sit_out", 0)))


def wrap(transport: Any) -> Any:
    """The transport as it is, unless this process runs in a gRPC dropout simulation."""
    value = os.environ.get(ENV)
    return VanishingTransport(transport, Orders.from_env(value)) if value else transport


class VanishingTransport:
    """A ``Transport`` that exits the process before the request of a planned (round, stage).

    It learns the round from the assignment a check-in returns (``round`` is the number the
    plan uses, ``round_id`` the attempt the stage requests name).
    """

    def __init__(self, inner: Any, orders: Orders, exit: Callable[[int], Any] = os._exit) -> None:
        self.inner, self.orders, self.exit = inner, orders, exit
        self.armed: tuple[int, int, str] | None = None  # (round_id, round, stage)
        self.sitting_out = False

    def close(self) -> None:
        self.inner.close()

    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        return self.inner.enroll(request)

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse:
        response = self.inner.check_in(request)
        if not response.HasField("assignment"):
            return response
        assignment = response.assignment
        if self.orders.sit_out and assignment.round_id == self.orders.sit_out:
            reason = f"simulation: sitting out round {assignment.round}, which this client vanished from"
            if not self.sitting_out:
                log.info("%s (id %d)", reason, assignment.round_id)
                self.sitting_out = True
            return pb.CheckInResponse(retry=pb.RetryAfter(retry_after_ms=SIT_OUT_MS, reason=reason))
        stage = self.orders.plan.get(assignment.round)
        if stage is not None:
            self.armed = (assignment.round_id, assignment.round, stage)
        return response

    def download_model(self, request: pb.DownloadModelRequest, size: int) -> bytes | bytearray:
        self._vanish_before("train", request.round_id)
        return self.inner.download_model(request, size)

    def upload_update(self, header: pb.UpdateHeader, parts: Sequence[Any]) -> pb.UploadUpdateResponse:
        return self.inner.upload_update(header, parts)

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        self._vanish_before("advertise", request.round_id)
        return self.inner.advertise_keys(request)

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        self._vanish_before("share", request.round_id)
        return self.inner.share_keys(request)

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        self._vanish_before("unmask", request.round_id)
        return self.inner.unmask(request)

    def _vanish_before(self, stage: str, round_id: int) -> None:
        if self.armed is None or self.armed[0] != round_id or self.armed[2] != stage:
            return
        _, number, _ = self.armed
        log.warning("simulated dropout: vanishing before %s in round %d (id %d)", RPC[stage], number, round_id)
        if self.orders.marker:
            event = {"round": number, "round_id": round_id, "stage": stage, "rpc": RPC[stage], "pid": os.getpid()}
            Path(self.orders.marker).write_text(json.dumps(event))
        sys.stdout.flush()
        sys.stderr.flush()
        self.exit(EXIT_CODE)
