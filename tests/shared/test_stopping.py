"""StopSignals: a signal stops the wait without the handler touching any lock."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from fedge.shared.stopping import PARENT_ENV, StopSignals, owned_env


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


def test_a_child_of_the_runner_named_in_the_environment_runs_on(restore_handlers, monkeypatch):
    monkeypatch.setenv(PARENT_ENV, str(os.getppid()))
    stop = StopSignals()
    assert stop.owner == os.getppid() and not stop.orphaned
    assert stop.wait(0.3) is False


def test_a_process_whose_runner_is_gone_stops_at_once(restore_handlers, monkeypatch):
    """Its parent is no longer the runner that started it (that died, and it was passed on)."""
    monkeypatch.setenv(PARENT_ENV, str(os.getppid() + 100_000))
    stop = StopSignals()
    started = time.monotonic()
    assert stop.orphaned and stop.is_set() and stop.wait(10) is True
    assert time.monotonic() - started < 1
    assert stop.received == []  # no signal came: the runner is gone


@pytest.mark.parametrize("value", ["", "abc", "-1"])
def test_without_a_runner_named_nothing_is_watched(restore_handlers, monkeypatch, value):
    monkeypatch.setenv(PARENT_ENV, value)
    stop = StopSignals()
    assert stop.owner is None and not stop.is_set()


def test_a_runner_names_itself_for_its_children():
    assert owned_env() == {PARENT_ENV: str(os.getpid())}
