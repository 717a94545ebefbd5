"""Where the CLI's tables go: a terminal at its own width, a pipe or a file uncut.

Rich lays a table out for 80 columns when stdout is not a terminal, so ``fedge models list |
grep`` or a redirect would cut the wider columns (``2026-1…``). Piped output gets a wide
console instead (a table takes only the width it needs); ``COLUMNS`` still wins when set.
"""

from __future__ import annotations

import os

from rich.console import Console

PIPED_WIDTH = 240


def table_console() -> Console:
    console = Console()
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(width=PIPED_WIDTH)
