"""Stopping a long-running command (the daemon, the agent) on SIGTERM or SIGINT.

The handler only notes the signal; waiting is done by polling every POLL_S. A handler runs
between the main thread's bytecodes, so one that set a ``threading.Event`` could block on the
Event's own lock, held by the very thread it interrupted; and a main thread blocked in
``Event.wait()`` with no timeout never runs the handler when the kernel delivers the signal to
one of gRPC's threads.
"""

from __future__ import annotations

import signal
import time
from typing import Protocol

POLL_S = 0.2


class Stop(Protocol):
    """What a loop needs to know when to stop: a ``threading.Event`` or a ``StopSignals``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StopSignals:
    """Set once SIGTERM or SIGINT arrives; install it before anything that should not die mid-way."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.received: list[int] = []
        for sig in signals:
            signal.signal(sig, lambda signum, _frame: self.received.append(signum))

    def is_set(self) -> bool:
        return bool(self.received)

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a signal arrives or ``timeout`` seconds pass; True if stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.received:
            left = POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(POLL_S, left))
        return self.is_set()
