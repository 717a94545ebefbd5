"""The gateway's deliberate limits, each with the reason for its value (docs/gateway.md)."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one gateway accepts. Frames stay small because weights and updates travel in chunks."""

    # Largest frame a client may send. Uploads go in chunks (the Python agent's are 512 KiB) and
    # the largest single request is an update header or a SecAgg stage's shares, far below this;
    # a larger frame closes the socket with 1009 before the gateway buffers it.
    max_frame_bytes: int = 4 * MIB
    # Calls open at once on one socket: a client needs one or two (a check-in beside a download),
    # so a socket cannot tie up the coordinator's threads.
    max_calls: int = 16
    # Sockets open at once; the next handshake gets HTTP 503 and Retry-After.
    max_connections: int = 1000
    # A socket with no open call and no frame for this long is closed (1000): clients reconnect
    # when they next check in, and an abandoned tab holds nothing.
    idle_timeout_s: float = 300.0
    # Keepalive pings find peers that vanished without closing (a phone that lost its network).
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    # Upload frames buffered per call before the gateway stops reading the socket (backpressure).
    upload_queue: int = 4
    # Calls one socket may open, on average per second and in a burst (a token bucket): an agent
    # opens a few a second at most (check-ins are paced by retry_after, a secure stage long-polls),
    # so a socket that floods call after call is refused (RESOURCE_EXHAUSTED) without one RPC
    # reaching the coordinator, and the coordinator's threads stay with everyone else.
    calls_per_s: float = 20.0
    call_burst: int = 60

    def __post_init__(self) -> None:
        for name in ("max_frame_bytes", "max_calls", "max_connections", "upload_queue", "call_burst"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"gateway limits: expected {name} >= 1, got {value}")
        for name in ("idle_timeout_s", "ping_interval_s", "ping_timeout_s", "calls_per_s"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"gateway limits: expected {name} > 0, got {value}")
