"""The gateway's plain HTTP side: one small route table and the request and response it passes.

    /ws         the WebSocket (calls.py)
    /healthz    200 while the coordinator answers its health check, 503 otherwise
    /           the web client's files (static.py)
    /models     published models (models.py)
    /api/status the status document for the dashboard (dashboard.py)
    /metrics    the same, for Prometheus (metrics.py)
    mount()     more

A route is an exact path, or a prefix when it ends in "/"; the longest match wins. A handler
takes an `HttpRequest` and returns an `HttpResponse`, either as a coroutine or synchronously
(then in a worker thread, so it may read files or the store). A `FedgeError` it raises becomes
the matching HTTP status with its sentence as the body, as the interceptor does for RPCs.
Only GET and HEAD exist here: the `websockets` server reads no request bodies.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import grpc
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from fedge.server.errors import FedgeError

log = logging.getLogger("fedge.gateway")

TEXT = "text/plain; charset=utf-8"
METHODS = ("GET", "HEAD")
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # percent-encoded, without the query
    query: str
    headers: Mapping[str, str]

    @classmethod
    def from_websockets(cls, request: Request) -> HttpRequest:
        target = urlsplit(request.path)
        return cls(request.method, target.path or "/", target.query, request.headers)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str, **headers: str) -> HttpResponse:
        return cls(status, (text.rstrip("\n") + "\n").encode(), TEXT, headers)

    def to_websockets(self, head: bool = False) -> Response:
        """The response as `websockets` sends it; HEAD keeps the length and drops the body."""
        pairs = [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(self.body))),
            ("Content-Type", self.content_type),
            ("X-Content-Type-Options", "nosniff"),
            *self.headers.items(),
        ]
        phrase = http.HTTPStatus(self.status).phrase
        return Response(self.status, phrase, Headers(pairs), b"" if head else self.body)


Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class WebSocketRoute:
    """The route table's marker for the path where the WebSocket handshake proceeds."""


WEBSOCKET = WebSocketRoute()


class Routes:
    """Paths to handlers: exact ones, and prefixes ending in "/"; the longest match wins."""

    def __init__(self, table: Mapping[str, Handler | WebSocketRoute]) -> None:
        self.table: dict[str, Handler | WebSocketRoute] = {}
        for path, handler in table.items():
            self.mount(path, handler)

    def mount(self, path: str, handler: Handler | WebSocketRoute) -> None:
        if not path.startswith("/"):
            raise ValueError(f"expected a route path starting with '/', got {path!r}")
        if path in self.table:
            raise ValueError(f"route {path!r} is already mounted")
        self.table[path] = handler

    def match(self, path: str) -> Handler | WebSocketRoute | None:
        if path in self.table:
            return self.table[path]
        prefixes = [p for p in self.table if p.endswith("/") and path.startswith(p)]
        return self.table[max(prefixes, key=len)] if prefixes else None

    async def respond(self, handler: Handler | None, request: HttpRequest) -> HttpResponse:
        """Run a handler; refusals and failures become statuses, never a dropped connection."""
        if handler is None:
            return HttpResponse.text(404, f"not found: {request.path}")
        if request.method not in METHODS:
            return HttpResponse.text(405, f"expected GET or HEAD, got {request.method}", Allow="GET, HEAD")
        try:
            if is_async(handler):
                return await handler(request)  # type: ignore[misc]
            return await asyncio.to_thread(handler, request)  # type: ignore[return-value]
        except FedgeError as error:
            return HttpResponse.text(HTTP_STATUS.get(error.code, 500), error.message)
        except Exception:
            log.exception("HTTP handler for %s failed", request.path)
            return HttpResponse.text(500, "internal error; the gateway logged it")


def is_async(handler: Handler) -> bool:
    """A coroutine function, or an object whose __call__ is one."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__)
