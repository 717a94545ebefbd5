"""Thin gRPC servicers: decode, call the Coordinator, encode. Errors are mapped in one place.

The interceptor turns a ``FedgeError`` into its status and sentence, lets through the error gRPC
raises when it has ended a call itself, and turns anything else into INTERNAL (logged with its
traceback); no servicer catches anything itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from fedge.server.coordinator import Coordinator
from fedge.server.errors import FedgeError
from fedge.shared.proto import admin_pb2_grpc, coordinator_pb2_grpc, registry_pb2_grpc

log = logging.getLogger("fedge.service")


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    def Enroll(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.enroll(request)

    def CheckIn(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.check_in(request)

    def DownloadModel(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        return self.coordinator.download_model(request)

    def UploadUpdate(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return self.coordinator.upload_update(request_iterator)

    def AdvertiseKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.advertise_keys(request)

    def ShareKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.share_keys(request)

    def Unmask(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.unmask(request)


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    def CreateTokens(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.create_tokens(request)

    def RevokeToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.revoke_token(request)

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.coordinator.get_status(request)


class RegistryServicer(registry_pb2_grpc.RegistryServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.catalog = coordinator.catalog

    def ListModels(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.catalog.list_models(request)

    def GetModel(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        return self.catalog.get_model(request)


def _abort(error: Exception, context: grpc.ServicerContext) -> None:
    if isinstance(error, FedgeError):
        context.abort(error.code, error.message)
    if isinstance(error, grpc.RpcError):
        raise error  # gRPC ended the call itself (a message over the limit, a client gone): it has its status
    log.exception("unexpected error in a request")
    context.abort(grpc.StatusCode.INTERNAL, "internal error; the coordinator logged it")


def _unary(behavior: Callable) -> Callable:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(request, context)
        except Exception as error:
            _abort(error, context)

    return handle


def _streaming(behavior: Callable) -> Callable:
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(request, context)
        except Exception as error:
            _abort(error, context)

    return handle


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps domain errors to statuses for every RPC, unary or streaming."""

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if handler.unary_unary:
            return handler._replace(unary_unary=_unary(handler.unary_unary))
        if handler.stream_unary:
            return handler._replace(stream_unary=_unary(handler.stream_unary))
        if handler.unary_stream:
            return handler._replace(unary_stream=_streaming(handler.unary_stream))
        return handler._replace(stream_stream=_streaming(handler.stream_stream))
