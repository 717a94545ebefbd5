"""The dashboard's data: ``GET /api/status``, the coordinator's status document for operators.

    page (client/js/dashboard/, served at /dashboard/)
      ──GET /api/status, Authorization: Bearer <admin credential>──► gateway
      ──Admin.GetStatus(admin_credential)──► coordinator ──► server/status.py's document, as JSON

The dashboard shows who takes part and how training goes, so it is an operator's view: the
gateway forwards the caller's credential and the coordinator decides, exactly as for
``fedge status --server``. The gateway itself holds no credential and adds no second check
that could drift from the coordinator's. The page takes the credential from its URL's
fragment (``#admin=...``), which browsers never send to a server or write to its logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import grpc

from fedge.server.gateway.http import HTTP_STATUS, HttpRequest, HttpResponse
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import admin_pb2_grpc

STATUS_TIMEOUT_S = 10.0
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fedge admin"'}
MISSING = "expected 'Authorization: Bearer <admin credential>' (the coordinator's <data_dir>/admin.token), got {got}"
WRONG = "the admin credential is wrong: expected the one in the coordinator's <data_dir>/admin.token"


class AdminStatus:
    """The /api/status route; ``channel`` returns the gateway's channel to the coordinator."""

    def __init__(self, channel: Callable[[], grpc.aio.Channel | None]) -> None:
        self.channel = channel

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        document = await self.fetch(request)
        if isinstance(document, HttpResponse):
            return document
        # the document names every client: no shared cache may keep it
        return HttpResponse(200, document, "application/json", {"Cache-Control": "no-store"})

    async def fetch(self, request: HttpRequest) -> bytes | HttpResponse:
        """The status document (JSON) for the request's bearer credential, or the refusal to send."""
        credential = bearer(request.headers)
        if credential is None:
            got = "a header of another scheme" if request.headers.get("Authorization") else "none"
            return HttpResponse.text(401, MISSING.format(got=got), **CHALLENGE)
        channel = self.channel()
        if channel is None:
            return HttpResponse.text(503, "the gateway is not connected to a coordinator yet")
        try:
            reply = await admin_pb2_grpc.AdminStub(channel).GetStatus(
                apb.GetStatusRequest(admin_credential=credential), timeout=STATUS_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            return refusal(error)
        return reply.status_json.encode()


def bearer(headers: Mapping[str, str]) -> str | None:
    """The credential of an ``Authorization: Bearer`` header, or None when there is none."""
    scheme, _, credential = headers.get("Authorization", "").strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


def refusal(error: grpc.aio.AioRpcError) -> HttpResponse:
    """A failed GetStatus as HTTP: a wrong credential is 401 (the page asks again), the rest as http.py maps."""
    code = error.code()
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return HttpResponse.text(401, WRONG, **CHALLENGE)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return HttpResponse.text(503, f"the coordinator did not answer: {error.details() or code.name}")
    return HttpResponse.text(HTTP_STATUS.get(code, 502), error.details() or code.name)
