"""FedAvgM (Hsu et al. 2019): FedAvg with heavy-ball momentum on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.base import StrategyBase, require


@dataclass(eq=False)
class FedAvgM(StrategyBase):
    """v ← β·v + Δ;  x ← x + server_lr · v   (Δ is the mean delta, v starts at zero).

    Momentum smooths the round-to-round swings that non-IID cohorts cause. Hsu et al. show
    that what matters is the effective rate server_lr / (1 − β); the defaults (0.1, 0.9)
    make it 1, so in steady state FedAvgM moves as far per round as FedAvg does.
    """

    server_lr: float = 0.1
    momentum: float = 0.9
    name: ClassVar[str] = "fedavgm"
    slots: ClassVar[tuple[str, ...]] = ("momentum",)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")

    def _move(self, delta: np.ndarray, slots: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        velocity = self.momentum * slots["momentum"] + delta
        return self.server_lr * velocity, {"momentum": velocity}
