"""Where logs go: one plain line per event off a terminal, the journal's priority prefix on it."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from fedge.cli.output import PLAIN_FORMAT, JournalFormatter, log_handler, on_journal


def journal_stream(path: Path) -> str:
    status = os.stat(path)
    return f"{status.st_dev}:{status.st_ino}"


def test_the_journal_is_recognised_by_the_device_and_inode_systemd_names(tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.touch()
    other.touch()
    with open(mine, "w") as stream:
        assert on_journal(stream, {"JOURNAL_STREAM": journal_stream(mine)})
        assert not on_journal(stream, {"JOURNAL_STREAM": journal_stream(other)})  # inherited by a redirected child
        assert not on_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not on_journal(stream, {})


def record(level: int, message: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("fedge", level, __file__, 1, message, None, exc_info)


def test_journal_lines_carry_the_syslog_priority_of_their_level():
    formatter = JournalFormatter("%(message)s")
    assert formatter.format(record(logging.INFO, "round 3 opened")) == "<6>round 3 opened"
    assert formatter.format(record(logging.WARNING, "certificate expires soon")) == "<4>certificate expires soon"
    try:
        raise ValueError("boom")
    except ValueError:
        lines = formatter.format(record(logging.ERROR, "failed", sys.exc_info())).splitlines()
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)  # the traceback stays an error


def test_off_a_terminal_an_event_is_one_plain_line_however_long(tmp_path):
    path = tmp_path / "log"
    with open(path, "w") as stream:
        handler = log_handler(stream, {})
        assert handler.formatter is not None and handler.formatter._fmt == PLAIN_FORMAT
        handler.emit(record(logging.INFO, "word " * 60))
    assert len(path.read_text().splitlines()) == 1


def run_server(tmp_path: Path, log: Path, env: dict[str, str]) -> tuple[int, str]:
    """``fedge server`` with stderr in ``log``, stopped with SIGTERM once it listens."""
    command = [sys.executable, "-m", "fedge", "server", "--port", "0", "--http-port", "0", "--data-dir", "d"]
    with open(log, "w") as stream:
        server = subprocess.Popen(command, cwd=tmp_path, stdout=stream, stderr=stream, env={**os.environ, **env})
        try:
            deadline = time.monotonic() + 60
            while "listening on" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            server.send_signal(signal.SIGTERM)
            return server.wait(30), log.read_text()
        finally:
            server.kill()


def test_the_daemon_logs_one_line_per_event_to_a_file_and_the_journal(tmp_path):
    """Rich would wrap the start line at 80 columns, splitting it over several journal entries."""
    log = tmp_path / "server.log"
    log.touch()
    status, text = run_server(tmp_path, log, {"JOURNAL_STREAM": ""})
    assert status == 0, text  # a clean stop: systemd's Restart=on-failure leaves it stopped
    started = [line for line in text.splitlines() if "listening on" in line]
    assert len(started) == 1 and "signing key" in started[0], text
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO fedge server listening on", started[0]), text

    status, text = run_server(tmp_path, log, {"JOURNAL_STREAM": journal_stream(log)})
    started = [line for line in text.splitlines() if "listening on" in line]
    assert status == 0 and len(started) == 1, text
    assert started[0].startswith("<6>fedge server listening on") and "signing key" in started[0], text
