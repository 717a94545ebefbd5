"""How an agent reaches a coordinator: a one-interface boundary with two implementations.

``GrpcTransport`` speaks gRPC to a daemon; ``InProcessTransport`` calls a Coordinator object
in this process with the very same messages (simulations). Both raise ``TransportError`` with
the gRPC status name, so the agent handles a refusal the same way whichever carried it.

Model weights and updates cross the boundary whole, as encoded bytes (an update as the
per-tensor parts ``codec.encode_parts`` gives): cutting them into chunk messages is the gRPC
transport's business (streams, message limits); the in-process one hands the coordinator the
very buffers, which go through the same checks, without a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import grpc

from fedge.shared import codec
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.proto import coordinator_pb2_grpc
from fedge.shared.tls import ClientTls, channel

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

    def download_model(self, request: pb.DownloadModelRequest, size: int) -> bytes | bytearray:
        """The round's encoded weights, whole: ``size`` bytes, as the assignment announced."""
        ...

    def upload_update(self, header: pb.UpdateHeader, parts: Sequence[codec.Buffer]) -> pb.UploadUpdateResponse:
        """An update: its header, then its encoded tensors (which the parts, joined, are)."""
        ...

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse: ...

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse: ...

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse: ...


class GrpcTransport:
    """A channel to a daemon; large messages are allowed up to ``max_message_mb``, uploads go
    in chunks of ``chunk_bytes``."""

    def __init__(
        self,
        address: str,
        max_message_mb: int = 16,
        timeout_s: float = 60.0,
        chunk_bytes: int = 512 * 1024,
        tls: ClientTls | None = None,
    ) -> None:
        limit = max_message_mb * 1024 * 1024
        options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]
        self.channel = channel(address, tls, options)
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes

    def close(self) -> None:
        self.channel.close()

    def enroll(self, request: pb.EnrollRequest) -> pb.EnrollResponse:
        return _grpc_call(lambda: self.stub.Enroll(request, timeout=self.timeout_s))

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse:
        return _grpc_call(lambda: self.stub.CheckIn(request, timeout=self.timeout_s))

    def download_model(self, request: pb.DownloadModelRequest, size: int) -> bytes | bytearray:
        def receive() -> bytearray:
            assembler = codec.Assembler(size)
            for chunk in self.stub.DownloadModel(request, timeout=self.timeout_s):
                assembler.add(chunk.data)
            return assembler.finish()

        return _grpc_call(receive)

    def upload_update(self, header: pb.UpdateHeader, parts: Sequence[codec.Buffer]) -> pb.UploadUpdateResponse:
        data = b"".join(parts)

        def chunks() -> Iterator[pb.UpdateChunk]:
            yield pb.UpdateChunk(header=header)
            if len(data) <= self.chunk_bytes:
                yield pb.UpdateChunk(data=data)
                return
            for part in codec.chunked(data, self.chunk_bytes):
                yield pb.UpdateChunk(data=bytes(part))

        return _grpc_call(lambda: self.stub.UploadUpdate(chunks(), timeout=self.timeout_s))

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
        return local_call(lambda: self.coordinator.enroll(request))

    def check_in(self, request: pb.CheckInRequest) -> pb.CheckInResponse:
        return local_call(lambda: self.coordinator.check_in(request))

    def download_model(self, request: pb.DownloadModelRequest, size: int) -> bytes | bytearray:
        return local_call(lambda: self.coordinator.model_data(request))

    def upload_update(self, header: pb.UpdateHeader, parts: Sequence[codec.Buffer]) -> pb.UploadUpdateResponse:
        return local_call(lambda: self.coordinator.upload(header, parts))

    def advertise_keys(self, request: pb.AdvertiseKeysRequest) -> pb.AdvertiseKeysResponse:
        return local_call(lambda: self.coordinator.advertise_keys(request))

    def share_keys(self, request: pb.ShareKeysRequest) -> pb.ShareKeysResponse:
        return local_call(lambda: self.coordinator.share_keys(request))

    def unmask(self, request: pb.UnmaskRequest) -> pb.UnmaskResponse:
        return local_call(lambda: self.coordinator.unmask(request))


def local_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except Exception as error:
        code = getattr(error, "code", None)  # the coordinator's errors carry their gRPC status
        if isinstance(code, grpc.StatusCode):
            raise TransportError(code.name, str(error)) from None
        raise
