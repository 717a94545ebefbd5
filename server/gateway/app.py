"""The web gateway: one asyncio HTTP + WebSocket server in front of the coordinator's gRPC port.

    browser ──WebSocket /ws──► Session (calls.py) ──grpc.aio──► Coordinator service
    browser ──HTTP GET──────► Routes (http.py): /healthz, /models (models.py), static files, mounted routes

It is a gRPC client like any agent, so it runs standalone (`fedge gateway --coordinator
HOST:PORT`) or inside `fedge server` against the daemon's own port (`GatewayThread`, since the
daemon is synchronous). It holds no state of its own beyond the open sockets.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

import fedge
from fedge.server.gateway.calls import Session
from fedge.server.gateway.dashboard import AdminStatus
from fedge.server.gateway.http import WEBSOCKET, Handler, HttpRequest, HttpResponse, Routes, WebSocketRoute
from fedge.server.gateway.limits import Limits
from fedge.server.gateway.metrics import Metrics
from fedge.server.gateway.models import ModelFiles
from fedge.server.gateway.static import StaticFiles
from fedge.shared.tls import ClientTls, ServerTls, aio_channel

log = logging.getLogger("fedge.gateway")
WEBSOCKETS_LOG = logging.getLogger("fedge.gateway.websockets")  # a line per request and socket: for --verbose

HEALTH_TIMEOUT_S = 2.0


def default_static_dir() -> Path | None:
    """The built web client: client/js/dist in a checkout, fedge/web in an installed wheel (setup.py
    ships the one as the other); None when neither is there."""
    package = Path(fedge.__file__).resolve().parent
    checkout = package.parent / "client" / "js"
    if checkout.is_dir():
        return checkout / "dist"
    installed = package / "web"
    return installed if installed.is_dir() else None


class Gateway:
    """Bridges WebSocket calls to the coordinator at ``coordinator`` and serves HTTP routes."""

    def __init__(
        self,
        coordinator: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        static_dir: Path | None = None,
        limits: Limits | None = None,
        tls: ServerTls | None = None,
        coordinator_tls: ClientTls | None = None,
    ) -> None:
        """``tls``: serve https:// and wss://; ``coordinator_tls``: dial the coordinator over TLS."""
        self.coordinator, self.host, self.port = coordinator, host, port
        self.tls, self.coordinator_tls = tls, coordinator_tls
        self.limits = limits or Limits()
        models = ModelFiles(lambda: self.channel)
        status = AdminStatus(lambda: self.channel)
        self.server: Server | None = None
        self.routes = Routes(
            {
                "/ws": WEBSOCKET,
                "/healthz": self.healthz,
                "/models": models,
                "/models/": models,
                "/api/status": status,
                "/metrics": Metrics(status, self.open_sockets),
                "/": StaticFiles(static_dir),
            }
        )
        self.channel: grpc.aio.Channel | None = None

    def mount(self, path: str, handler: Handler) -> None:
        """Add an HTTP route (an exact path, or a prefix ending in "/"), e.g. /models/ or /api/status."""
        self.routes.mount(path, handler)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve until the block exits; yields the bound "host:port". Open sockets close with 1001."""
        options = [("grpc.max_send_message_length", self.limits.max_frame_bytes)]
        async with aio_channel(self.coordinator, self.coordinator_tls, options) as channel:
            self.channel = channel
            async with self.listening() as server:
                port = server.sockets[0].getsockname()[1]
                scheme = "https" if self.tls else "http"
                log.info("fedge gateway on %s://%s:%d, coordinator at %s", scheme, self.host, port, self.coordinator)
                yield f"{self.host}:{port}"

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[Server]:
        try:
            server = await serve(
                self.socket,
                self.host,
                self.port,
                process_request=self.http,
                compression=None,  # masked updates do not compress: deflate only costs CPU (4× slower uploads)
                max_size=self.limits.max_frame_bytes,
                ping_interval=self.limits.ping_interval_s,
                ping_timeout=self.limits.ping_timeout_s,
                logger=WEBSOCKETS_LOG,
                ssl=self.tls.ssl_context() if self.tls else None,
            )
        except OSError as error:
            why = (error.strerror or str(error)).rsplit(": ", 1)[-1]  # asyncio prefixes the address, given already
            raise OSError(f"cannot listen on {self.host}:{self.port} for the web gateway: {why}") from None
        self.server = server
        try:
            yield server
        finally:
            self.server = None
            server.close()  # open sockets get 1001 (going away); their calls are cancelled
            await server.wait_closed()

    def open_sockets(self) -> int:
        return len(self.server.connections) if self.server is not None else 0

    async def socket(self, websocket: ServerConnection) -> None:
        assert self.channel is not None
        await Session(websocket, self.channel, self.limits).run()

    async def http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Every request's first stop: a route's response, or None to go on with the WebSocket handshake."""
        incoming = HttpRequest.from_websockets(request)
        handler = self.routes.match(incoming.path)
        if isinstance(handler, WebSocketRoute):
            return self.admit(connection)
        response = await self.routes.respond(handler, incoming)
        return response.to_websockets(head=incoming.method == "HEAD")

    def admit(self, connection: ServerConnection) -> Response | None:
        open_sockets = len(connection.server.connections)
        if open_sockets < self.limits.max_connections:
            return None
        message = f"gateway full: expected fewer than {self.limits.max_connections} sockets, got {open_sockets}"
        return HttpResponse.text(503, message, **{"Retry-After": "30"}).to_websockets()

    async def healthz(self, request: HttpRequest) -> HttpResponse:
        """200 while the coordinator answers gRPC health checks, so a load balancer sees the whole path."""
        assert self.channel is not None
        check = health_pb2.HealthCheckRequest(service="fedge.v1.Coordinator")
        try:
            reply = await health_pb2_grpc.HealthStub(self.channel).Check(check, timeout=HEALTH_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            return HttpResponse.text(503, f"coordinator at {self.coordinator}: {error.code().name}")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return HttpResponse.text(200 if status == "SERVING" else 503, f"coordinator at {self.coordinator}: {status}")


async def serve_until_signalled(gateway: Gateway) -> None:
    """`fedge gateway`: serve until SIGTERM or SIGINT, then close every socket cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with gateway.running():
        await stop.wait()
    log.info("gateway stopped")


class GatewayThread:
    """A gateway on its own event loop in a background thread, for the synchronous daemon."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.address = ""
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.main, name="fedge-gateway", daemon=True)

    def start(self, timeout_s: float = 10.0) -> str:
        """Start serving; returns the bound "host:port", or raises what stopped it (a port in use)."""
        self.thread.start()
        if not self.ready.wait(timeout_s):
            raise OSError(f"the gateway did not start within {timeout_s:g} s")
        if self.error is not None:
            raise self.error
        return self.address

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout_s)

    def main(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as error:  # reported by start(); a failure after it is logged
            if self.ready.is_set():
                log.exception("the gateway stopped on an error")
            self.error = error
            self.ready.set()

    async def serve(self) -> None:
        self.loop, self.stop_event = asyncio.get_running_loop(), asyncio.Event()
        async with self.gateway.running() as address:
            self.address = address
            self.ready.set()
            await self.stop_event.wait()
