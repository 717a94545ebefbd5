"""``fedge server``: the coordinator as a foreground daemon.

It serves the Coordinator and Admin services and the standard gRPC health service, runs the
web gateway for browsers on ``http_port`` (in its own thread and event loop, a gRPC client of
this very daemon), drives rounds from a background thread, writes ``<data_dir>/server.json``
(address and pid) so local tools can find it, and stops cleanly on SIGTERM or SIGINT: the
gateway's sockets close, in-flight RPCs get a grace period, the store is closed, and an
unfinished round is retried at the next start.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from fedge.server.coordinator import Coordinator
from fedge.server.gateway import Gateway, GatewayThread
from fedge.server.service import AdminServicer, CoordinatorServicer, ErrorInterceptor, RegistryServicer
from fedge.shared.files import write_atomically
from fedge.shared.proto import admin_pb2_grpc, coordinator_pb2_grpc, registry_pb2_grpc
from fedge.shared.stopping import StopSignals
from fedge.shared.tls import RENEW_DAYS, ServerTls

log = logging.getLogger("fedge.server")
STAGE_HOLD_S = 1.0  # how long a secure-stage request may wait for its stage to close (a long poll)


@dataclass
class Running:
    """A started daemon: its bound address and the parts to stop."""

    address: str
    server: grpc.Server
    coordinator: Coordinator
    stop_event: threading.Event
    runner: threading.Thread
    gateway: GatewayThread | None = None

    def stop(self, grace: float = 2.0) -> None:
        if self.gateway is not None:  # first: its sockets' calls end while the coordinator still answers
            self.gateway.stop()
        self.stop_event.set()
        self.server.stop(grace).wait()
        self.runner.join(timeout=5)
        self.coordinator.close()


def start(
    settings: Any, tasks: Any, workers: int = 16, gateway: bool = False, static_dir: Path | None = None
) -> Running:
    """Start serving on ``settings.host:settings.port`` (0 picks a free port).

    ``gateway`` also starts the web gateway on ``settings.http_port`` (0: none) serving
    ``static_dir``; tests and benchmarks leave it off, so they never contend for that fixed port.
    """
    data_dir = Path(settings.data_dir)
    tls = settings.tls()  # first: a certificate that cannot serve stops the start before the store opens
    # secure-stage long polls, each at most STAGE_HOLD_S: all workers but two may wait (requests to
    # unmask, while uploads still need workers, half of those)
    coordinator = Coordinator(
        tasks, data_dir, chunk_bytes=settings.chunk_kb * 1024, hold_s=STAGE_HOLD_S, holders=workers - 2
    )
    limit = settings.max_message_mb * 1024 * 1024
    options = [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        # gRPC's default SO_REUSEPORT lets a second daemon bind a port already served, and the
        # kernel then splits the clients between two coordinators: refuse the port instead
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers), interceptors=[ErrorInterceptor()], options=options
    )
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(coordinator), server)
    admin_pb2_grpc.add_AdminServicer_to_server(AdminServicer(coordinator), server)
    registry_pb2_grpc.add_RegistryServicer_to_server(RegistryServicer(coordinator), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bind = f"{settings.host}:{settings.port}"
    try:  # a refused bind: 0 from older grpcio, RuntimeError from newer
        port = server.add_secure_port(bind, tls.grpc_credentials()) if tls else server.add_insecure_port(bind)
    except RuntimeError:
        port = 0
    if port == 0:
        coordinator.close()
        raise OSError(f"cannot listen on {settings.host}:{settings.port}: the port is in use or not allowed")
    server.start()
    for service in ("", "fedge.v1.Coordinator", "fedge.v1.Admin", "fedge.v1.Registry"):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    try:
        web = start_gateway(settings, port, static_dir, tls) if gateway and settings.http_port else None
    except OSError:
        server.stop(0).wait()
        coordinator.close()
        raise
    address = f"{settings.host}:{port}"
    fingerprint = coordinator.signing_key.public_key().fingerprint()
    about = describe(address, tls, web, settings, fingerprint)
    write_atomically(data_dir / "server.json", (json.dumps(about) + "\n").encode())  # runners poll for it
    coordinator.about = about  # `fedge status` shows it
    stop_event = threading.Event()
    runner = threading.Thread(target=coordinator.run, args=(stop_event,), name="fedge-rounds", daemon=True)
    runner.start()
    scheme = ("with mutual TLS" if tls.mutual else "with TLS") if tls else "plaintext"
    days_left = tls.days_left() if tls else math.inf
    if days_left < RENEW_DAYS:
        log.warning("the TLS certificate %s expires in %.0f days: renew it", tls.paths[0], days_left)
    log.info("fedge server listening on %s (%s), data in %s, signing key %s", address, scheme, data_dir, fingerprint)
    return Running(address, server, coordinator, stop_event, runner, web)


def describe(address: str, tls: ServerTls | None, web: Any, settings: Any, fingerprint: str) -> dict[str, Any]:
    """What an operator checks first: where the daemon listens, over what, and since when."""
    scheme = "https" if tls else "http"
    return {
        "address": address,
        "pid": os.getpid(),
        "started": time.time(),
        "tls": tls is not None,
        "client_certificates": bool(tls and tls.mutual),
        "certificate_expires": tls.expires.timestamp() if tls else None,
        "gateway": f"{scheme}://{settings.host}:{settings.http_port}/" if web else None,
        "signing_key": fingerprint,
    }


def start_gateway(settings: Any, grpc_port: int, static_dir: Path | None, tls: ServerTls | None) -> GatewayThread:
    """The web gateway on ``settings.http_port``, a client of this daemon's own gRPC port; with
    TLS, it serves https:// and wss:// with the daemon's certificate and dials the daemon over TLS."""
    wildcard = settings.host in ("0.0.0.0", "::", "")
    target = f"localhost:{grpc_port}" if wildcard else f"{settings.host}:{grpc_port}"
    gateway = Gateway(
        target,
        settings.host,
        settings.http_port,
        static_dir,
        tls=tls,
        coordinator_tls=tls.loopback_client() if tls else None,
    )
    thread = GatewayThread(gateway)
    thread.start()
    return thread


def serve_forever(settings: Any, tasks: Any, static_dir: Path | None = None) -> None:
    """Run until SIGTERM or SIGINT (handled from before the port opens, so none is ever fatal)."""
    stop = StopSignals()
    running = start(settings, tasks, gateway=True, static_dir=static_dir)
    stop.wait()
    log.info("stopping %s: finishing in-flight requests", stop.reason)
    running.stop()
    log.info("stopped")
