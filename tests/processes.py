"""The processes running on this machine, read from /proc: what the tests that stop a run check
it left behind, or which process to signal (tests/simulation, tests/deploy); and waiting on the
processes a test started (``wait_for``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    command: bytes  # its arguments, each ended by NUL, as /proc/PID/cmdline holds them
    uid: int


def running() -> list[Process]:
    """Every process still running: zombies (gone, not yet reaped) and those ending meanwhile left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes()
            uid = int((entry / "status").read_text().split("Uid:")[1].split()[0])
        except OSError:  # it ended meanwhile
            continue
        if state != "Z":
            found.append(Process(int(entry.name), int(parent), command, uid))
    return found


def descendants(root: int) -> list[Process]:
    """The running processes started by ``root``, directly or through others."""
    processes = running()
    parents = {p.pid: p.parent for p in processes}

    def under(pid: int) -> bool:
        while pid in parents and pid != root:
            pid = parents[pid]
        return pid == root

    return [p for p in processes if p.pid != root and under(p.parent)]


def wait_for(
    condition: Callable[[], bool],
    what: str,
    running: list[subprocess.Popen],
    timeout_s: float = 90,
    log: Path | None = None,
) -> None:
    """Poll ``condition`` until it holds; fail, with ``log``'s text when given, if it does not
    within ``timeout_s`` or one of the ``running`` processes exits first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        text = f"\n{log.read_text()}" if log is not None and log.exists() else ""
        assert time.monotonic() < deadline, f"timed out waiting for {what}{text}"
        exited = [process.args for process in running if process.poll() is not None]
        assert not exited, f"exited while waiting for {what}: {exited}{text}"
        time.sleep(0.2)
