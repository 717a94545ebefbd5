"""Every error a client can see: a class, a gRPC status, one sentence.

    FedgeError
    ├── Unauthenticated      UNAUTHENTICATED      unknown, revoked or used token/credential
    ├── PermissionDenied     PERMISSION_DENIED    admin endpoint without the admin credential
    ├── StaleRound           FAILED_PRECONDITION  not the round (or task) that is accepting updates
    ├── InvalidRequest       INVALID_ARGUMENT     a request field out of range
    │   └── InvalidUpdate                         wrong tensors, sizes, dtypes, NaN/Inf, bad header
    ├── DuplicateUpdate      ALREADY_EXISTS       a second update for the same round
    ├── TooLarge             RESOURCE_EXHAUSTED   a message or upload larger than allowed
    └── NotFound             NOT_FOUND            no such task, round or token

Servicers never catch these: one interceptor turns them into statuses.
"""

from __future__ import annotations

import grpc


class FedgeError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(FedgeError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FedgeError):
    code = grpc.StatusCode.PERMISSION_DENIED


class StaleRound(FedgeError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class InvalidRequest(FedgeError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidUpdate(InvalidRequest):
    pass


class DuplicateUpdate(FedgeError):
    code = grpc.StatusCode.ALREADY_EXISTS


class TooLarge(FedgeError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(FedgeError):
    code = grpc.StatusCode.NOT_FOUND
