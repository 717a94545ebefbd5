"""A real coordinator on loopback gRPC for service tests, with helpers to act as clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest

from fedge.server.config import ServerSettings, TaskConfig
from fedge.server.daemon import Running, start
from fedge.shared import codec
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import admin_pb2_grpc, coordinator_pb2_grpc
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.training import TrainConfig


def small_task(**overrides) -> TaskConfig:
    """An MLP on 8-step, 2-channel windows with 3 labels: 8·2·64 + 64 + 64·64 + 64 + 64·3 + 3 parameters."""
    options = {
        "name": "t",
        "model": "mlp",
        "input_shape": (8, 2),
        "labels": ("a", "b", "c"),
        "rounds": 3,
        "clients_per_round": 2,
        "min_clients": 1,
        "over_selection": 1.0,
        "select_timeout_s": 0.5,
        "train_deadline_s": 5.0,
        "training": TrainConfig(epochs=1, batch_size=4),
    }
    return TaskConfig(**{**options, **overrides})


def _refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as excinfo:
        call()
    return excinfo.value.code(), excinfo.value.details()


@pytest.fixture
def refused() -> Callable[[Callable[[], Any]], tuple[grpc.StatusCode, str]]:
    """The status code and sentence a call was refused with; fails the test if the call succeeded."""
    return _refused


@dataclass
class Service:
    """A started daemon plus stubs, and shortcuts for what a client does."""

    running: Running
    stub: coordinator_pb2_grpc.CoordinatorStub
    admin: admin_pb2_grpc.AdminStub
    admin_credential: str

    def tokens(self, count: int = 1) -> list[str]:
        request = apb.CreateTokensRequest(admin_credential=self.admin_credential, count=count)
        return list(self.admin.CreateTokens(request).tokens)

    def enroll(self) -> str:
        return self.enroll_as()[1]

    def enroll_as(self) -> tuple[str, str]:
        """Enrol a new client; returns (client_id, credential)."""
        response = self.stub.Enroll(pb.EnrollRequest(token=self.tokens()[0], platform="test"))
        return response.client_id, response.credential

    def revoke(self, token_or_client_id: str) -> str:
        request = apb.RevokeTokenRequest(admin_credential=self.admin_credential, token_or_client_id=token_or_client_id)
        return self.admin.RevokeToken(request).revoked

    def assignment(self, credential: str) -> pb.Assignment:
        response = self.stub.CheckIn(pb.CheckInRequest(credential=credential))
        assert response.HasField("assignment"), response
        return response.assignment

    def weights(self, credential: str, assignment: pb.Assignment) -> list[np.ndarray]:
        request = pb.DownloadModelRequest(
            credential=credential, task_id=assignment.task_id, round_id=assignment.round_id
        )
        data = b"".join(chunk.data for chunk in self.stub.DownloadModel(request))
        return codec.decode(codec.from_proto(assignment.tensors), data)

    def chunks(
        self, credential: str, assignment: pb.Assignment, delta: list[np.ndarray] | None = None, **header
    ) -> list[pb.UpdateChunk]:
        """An upload's messages: the header, then ``delta`` (zeros of the right shapes by default) in 4 KiB chunks."""
        specs = codec.from_proto(assignment.tensors)
        delta = delta if delta is not None else [np.zeros(s.shape, np.float32) for s in specs]
        fields = {"credential": credential, "task_id": assignment.task_id, "round_id": assignment.round_id,
                  "num_examples": 10, "tensors": assignment.tensors, **header}  # fmt: skip
        data = codec.encode(delta)
        return [pb.UpdateChunk(header=pb.UpdateHeader(**fields))] + [
            pb.UpdateChunk(data=bytes(part)) for part in codec.chunked(data, 4096)
        ]

    def upload(
        self, credential: str, assignment: pb.Assignment, delta: list[np.ndarray] | None = None, **header
    ) -> pb.UploadUpdateResponse:
        return self.stub.UploadUpdate(iter(self.chunks(credential, assignment, delta, **header)))


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    settings = ServerSettings(
        host="127.0.0.1", port=0, data_dir=tmp_path / "coordinator", max_message_mb=1, chunk_kb=16
    )
    running = start(settings, [small_task()])
    channel = grpc.insecure_channel(running.address)
    try:
        yield Service(
            running,
            coordinator_pb2_grpc.CoordinatorStub(channel),
            admin_pb2_grpc.AdminStub(channel),
            running.coordinator.admin_credential,
        )
    finally:
        channel.close()
        running.stop(grace=0.5)
