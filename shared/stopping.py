"""Stopping a long-running command (the daemon, the agent) on SIGTERM or SIGINT, or once the
runner that started it is gone.

The handler only notes the signal; waiting is done by polling every POLL_S. A handler runs
between the main thread's bytecodes, so one that set a ``threading.Event`` could block on the
Event's own lock, held by the very thread it interrupted; and a main thread blocked in
``Event.wait()`` with no timeout never runs the handler when the kernel delivers the signal to
one of gRPC's threads.

A runner that starts daemons and agents as its own children (the loopback simulation) names
itself in FEDGE_PARENT_PID. Such a child stops as on SIGTERM once its parent process differs:
the runner died, even of SIGKILL, and no daemon or agent is left running on its own.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Protocol

POLL_S = 0.2
PARENT_ENV = "FEDGE_PARENT_PID"


class Stop(Protocol):
    """What a loop needs to know when to stop: a ``threading.Event`` or a ``StopSignals``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StopSignals:
    """Set once SIGTERM or SIGINT arrives, or once the runner named in FEDGE_PARENT_PID is no longer
    this process's parent; install it before anything that should not die mid-way."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.received: list[int] = []
        self.owner = owner()
        for sig in signals:
            signal.signal(sig, lambda signum, _frame: self.received.append(signum))

    def is_set(self) -> bool:
        return bool(self.received) or self.orphaned

    @property
    def orphaned(self) -> bool:
        """The runner that started this process is gone (its children pass to another parent)."""
        return self.owner is not None and os.getppid() != self.owner

    @property
    def reason(self) -> str:
        """Why it is set, in words for a log line ("" while it is not)."""
        if self.received:
            return f"on {signal.Signals(self.received[0]).name}"
        return "as the runner that started it is gone" if self.orphaned else ""

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a signal arrives (or the runner is gone) or ``timeout`` seconds pass; True if stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(POLL_S, left))
        return self.is_set()


def owner() -> int | None:
    """The runner process named in FEDGE_PARENT_PID, if any (a value that is no pid is ignored)."""
    value = os.environ.get(PARENT_ENV, "")
    return int(value) if value.isdigit() else None


def owned_env() -> dict[str, str]:
    """What a runner adds to its children's environment so that they stop once it is gone."""
    return {PARENT_ENV: str(os.getpid())}
