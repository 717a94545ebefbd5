"""FedAvg (McMahan et al. 2017): the example-weighted mean of the deltas, applied as is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedge.server.strategies.base import StrategyBase


@dataclass(eq=False)
class FedAvg(StrategyBase):
    """x ← x + server_lr · Σ nᵢΔᵢ / Σ nᵢ; with server_lr = 1 the new model is the mean model."""

    name: ClassVar[str] = "fedavg"
