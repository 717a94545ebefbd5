"""Where the CLI's tables and the daemons' logs go: a terminal at its own width, a pipe, a file
or the journal uncut.

Rich lays a table out for 80 columns when stdout is not a terminal, so ``fedge models list |
grep`` or a redirect would cut the wider columns (``2026-1…``). Piped output gets a wide
console instead (a table takes only the width it needs); ``COLUMNS`` still wins when set.

Logs are Rich's columns on a terminal only. Anywhere else (a file, ``docker logs``, a systemd
unit) Rich would wrap each event at 80 columns into several lines, so there an event is one
plain line; on the journal (systemd's ``JOURNAL_STREAM`` names our stderr) without a timestamp,
which the journal adds, and with a ``<N>`` priority prefix, so ``journalctl -p warning`` works.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from rich.console import Console

PIPED_WIDTH = 240
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(message)s"
JOURNAL_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def table_console() -> Console:
    """Markup off: paths, labels and messages print as given ("runs/[a]" would lose "[a]")."""
    console = Console(markup=False)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(width=PIPED_WIDTH, markup=False)


class JournalFormatter(logging.Formatter):
    """``<priority>message``: the syslog level prefix that systemd reads off each stderr line."""

    def format(self, record: logging.LogRecord) -> str:
        priority = JOURNAL_PRIORITY.get(record.levelno, 6)
        lines = super().format(record).splitlines() or [""]
        return "\n".join(f"<{priority}>{line}" for line in lines)  # a traceback's lines keep its level


def on_journal(stream: TextIO, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether ``stream`` is the journal stream systemd set up (``JOURNAL_STREAM=dev:inode``)."""
    try:
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def log_handler(stream: TextIO, environ: dict[str, str] | os._Environ[str] = os.environ) -> logging.Handler:
    if on_journal(stream, environ):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JournalFormatter("%(message)s"))
        return handler
    if stream.isatty():
        from rich.logging import RichHandler

        return RichHandler(console=Console(file=stream), show_path=False, rich_tracebacks=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    return handler


def configure_logging(verbose: bool = False) -> None:
    """The commands' log format on stderr: one event per line, DEBUG with ``verbose``."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[log_handler(sys.stderr)])
    logging.getLogger("fedge.gateway.websockets").setLevel(logging.DEBUG if verbose else logging.WARNING)
