"""``fedge simulate``: a whole federation from one command.

``run(config, out)`` loads a dataset, splits it into clients, runs the rounds on the chosen
backend and writes ``metrics.jsonl``, ``summary.json`` and ``plot.png`` to ``out``; callbacks
let the CLI draw progress. ``SimulationConfig`` says what to run.

Names are resolved lazily (PEP 562) so that importing the CLI, as a device running only
``fedge client`` does, never imports the coordinator.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Federation", "SimulationConfig", "run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from fedge.simulation.runner import run

        return run
    if name == "SimulationConfig":
        from fedge.simulation.config import SimulationConfig

        return SimulationConfig
    if name == "Federation":
        from fedge.simulation.inprocess import Federation

        return Federation
    raise AttributeError(f"module 'fedge.simulation' has no attribute {name!r}")
