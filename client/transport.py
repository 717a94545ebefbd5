"""How an agent reaches a coordinator: a one-interface boundary with two implementations.

``GrpcTransport`` speaks gRPC to a daemon; ``InProcessTransport`` calls a Coordinator object
in this process with the very same messages (simulations). Both raise ``TransportError`` with
the gRPC status name, so the agent handles a refusal the same way whichever carried it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import grpc

from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.proto import coordinator_pb2_grpc

T = TypeVar("T")

RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "ABORTED", "CANCELLED"}


class TransportError(Exception):
    """A refused or failed call: ``code`` is the gRPC status name, ``message`` its sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


class Transport(Protocol):
    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse: ...

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse: ...

    def download_model(self, request: pb.DownloadModelRequest) -> Iterator[pb.ModelChunk]: ...

    def upload_update(self, chunks: Iterator[pb.UpdateChunk]) -> pb.UploadUpdateResponse: ...

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse: ...

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse: ...

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse: ...


class GrpcTransport:
    """A channel to a daemon; large messages are allowed up to ``max_message_mb``."""

    def __init__(self, address: str, max_message_mb: int = 16, timeout_s: float = 60.0) -> None:
        limit = max_message_mb * 1024 * 1024
        options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]
        self.channel = grpc.insecure_channel(address, options=options)
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)
        self.timeout_s = timeout_s

    def close(self) -> None:
        self.channel.close()

    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        return _grpc_call(lambda: self.stub.Enroll(request, timeout=self.timeout_s))

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse:
        return _grpc_call(lambda: self.stub.CheckIn(request, timeout=self.timeout_s))

    def download_model(self, request: pb.DownloadModelRequest) -> Iterator[pb.ModelChunk]:
        return _grpc_call(lambda: list(self.stub.DownloadModel(request, timeout=self.timeout_s)))  # type: ignore[return-value]

    def upload_update(self, chunks: Iterator[pb.UpdateChunk]) -> pb.UploadUpdateResponse:
        return _grpc_call(lambda: self.stub.UploadUpdate(chunks, timeout=self.timeout_s))

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        return _grpc_call(lambda: self.stub.AdvertiseKeys(request, timeout=self.timeout_s))

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        return _grpc_call(lambda: self.stub.ShareKeys(request, timeout=self.timeout_s))

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        return _grpc_call(lambda: self.stub.Unmask(request, timeout=self.timeout_s))


def _grpc_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except grpc.RpcError as error:
        raise TransportError(error.code().name, error.details() or "") from None


class InProcessTransport:
    """Calls a coordinator object directly (simulations): same messages, no sockets."""

    def __init__(self, coordinator: Any) -> None:
        self.coordinator = coordinator

    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        return _local_call(lambda: self.coordinator.enroll(request))

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse:
        return _local_call(lambda: self.coordinator.check_in(request))

    def download_model(self, request: pb.DownloadModelRequest) -> Iterator[pb.ModelChunk]:
        return _local_call(lambda: list(self.coordinator.download_model(request)))  # type: ignore[return-value]

    def upload_update(self, chunks: Iterator[pb.UpdateChunk]) -> pb.UploadUpdateResponse:
        return _local_call(lambda: self.coordinator.upload_update(iter(chunks)))

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        return _local_call(lambda: self.coordinator.advertise_keys(request))

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        return _local_call(lambda: self.coordinator.share_keys(request))

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        return _local_call(lambda: self.coordinator.unmask(request))


def _local_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except Exception as error:
        code = getattr(error, "code", None)  # the coordinator's errors carry their gRPC status
        if isinstance(code, grpc.StatusCode):
            raise TransportError(code.name, str(error)) from None
        raise
