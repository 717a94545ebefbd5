"""Published models over plain HTTP, fetched from the coordinator's Registry service.

    GET /models                                     every published manifest (with its signature, hex), JSON
    GET /models/<task>/<version|latest>/<file>      model.onnx, manifest.json or manifest.sig
    GET /models/<task>/<version|latest>/int8/<file> the int8 copy's

Going through the Registry RPCs, not the data dir, keeps the gateway a plain gRPC client: it
serves models the same way inside `fedge server` and standalone. A numbered version never
changes, so it may be cached for good; `latest` and the listing are revalidated.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc

from fedge.server.gateway.http import HTTP_STATUS, HttpRequest, HttpResponse
from fedge.server.serving import FILES, parse_http_path
from fedge.shared import registry
from fedge.shared.proto import registry_pb2 as rpb
from fedge.shared.proto import registry_pb2_grpc

FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class ModelFiles:
    """The /models routes; ``channel`` returns the gateway's channel to the coordinator."""

    def __init__(self, channel: Callable[[], grpc.aio.Channel | None]) -> None:
        self.channel = channel

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = self.channel()
        if channel is None:
            return HttpResponse.text(503, "the gateway is not connected to a coordinator yet")
        stub = registry_pb2_grpc.RegistryStub(channel)
        try:
            if request.path.rstrip("/") == "/models":
                return await self.listing(stub)
            return await self.file(stub, request.path)
        except grpc.aio.AioRpcError as error:
            return HttpResponse.text(HTTP_STATUS.get(error.code(), 502), error.details() or error.code().name)

    async def listing(self, stub: registry_pb2_grpc.RegistryStub) -> HttpResponse:
        reply = await stub.ListModels(rpb.ListModelsRequest(), timeout=10)
        models = [json.loads(m.manifest_json) | {"signature": m.signature.hex()} for m in reply.models]
        body = json.dumps({"models": models}).encode()
        return HttpResponse(200, body, "application/json", {"Cache-Control": REVALIDATE})

    async def file(self, stub: registry_pb2_grpc.RegistryStub, path: str) -> HttpResponse:
        task, version, variant, name = parse_http_path(path)
        head, data = None, []
        async for chunk in stub.GetModel(
            rpb.GetModelRequest(task_id=task, version=version, variant=variant), timeout=60
        ):
            if chunk.HasField("model"):
                head = chunk.model
            else:
                data.append(chunk.data)
        if head is None:
            return HttpResponse.text(502, "the coordinator sent no manifest")
        body = {
            registry.MODEL: b"".join(data),
            registry.MANIFEST: head.manifest_json,
            registry.SIGNATURE: head.signature,
        }
        cache = FOREVER if version else REVALIDATE
        return HttpResponse(200, body[name], FILES[name], {"Cache-Control": cache})
