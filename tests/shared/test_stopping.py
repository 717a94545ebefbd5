"""StopSignals: a signal stops the wait without the handler touching any lock."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from fedge.shared.stopping import StopSignals


@pytest.fixture
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_signal_ends_the_wait(restore_handlers):
    stop = StopSignals()
    assert not stop.is_set()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    assert stop.wait(10) is True
    assert time.monotonic() - started < 5
    assert stop.received == [signal.SIGTERM]


def test_without_a_signal_the_wait_times_out(restore_handlers):
    stop = StopSignals()
    started = time.monotonic()
    assert stop.wait(0.5) is False
    assert 0.45 <= time.monotonic() - started < 3
    assert stop.wait(0) is False
