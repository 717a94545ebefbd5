"""``python -m fedge`` is the ``fedge`` command."""

from __future__ import annotations

from fedge.cli import main

main()
