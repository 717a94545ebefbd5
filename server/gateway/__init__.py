"""The web gateway: browsers speak the Coordinator's RPCs as protobuf frames over a WebSocket.

    limits.py   the deliberate limits (frame size, calls per socket, sockets, idle, pings), with why
    calls.py    one socket's calls: GatewayFrame in, gRPC to the coordinator, GatewayFrame out
    http.py     plain HTTP: the route table, /healthz, and the hook to mount more routes
    static.py   the web client's built files
    models.py   published models over HTTP, through the coordinator's Registry service
    dashboard.py  /api/status for the operator's dashboard, through the Admin service
    metrics.py  /metrics: the same status for Prometheus
    app.py      the server tying them together; standalone or in a thread of `fedge server`

The framing is fixed in protos/fedge/v1/gateway.proto; docs/gateway.md is the user's guide.
"""

from __future__ import annotations

from fedge.server.gateway.app import Gateway, GatewayThread, default_static_dir, serve_until_signalled
from fedge.server.gateway.http import HttpRequest, HttpResponse
from fedge.server.gateway.limits import Limits

__all__ = [
    "Gateway",
    "GatewayThread",
    "HttpRequest",
    "HttpResponse",
    "Limits",
    "default_static_dir",
    "serve_until_signalled",
]
