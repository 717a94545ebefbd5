"""The adaptive server optimisers of Reddi et al. 2021, "Adaptive Federated Optimization".

    m ← β₁·m + (1 − β₁)·Δ
    v ← rule(v, Δ²)                     FedAdam, FedYogi, FedAdagrad differ only here
    x ← x + η · m / (√v + τ)

m starts at 0 and v at τ², the paper's lower bound v₋₁ ≥ τ². There is no bias correction,
as in the paper's Algorithm 2; τ keeps the early steps bounded instead. Defaults are the
paper's: η = 1e-2 (server_lr), β₁ = 0.9, β₂ = 0.99, τ = 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.base import Shapes, StrategyBase, Weights, require


@dataclass(eq=False)
class FedOpt(StrategyBase):
    """Shared first moment and step; subclasses give ``second_moment``."""

    server_lr: float = 1e-2
    beta1: float = 0.9
    tau: float = 1e-3
    slots: ClassVar[tuple[str, ...]] = ("m", "v")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.beta1 < 1, f"beta1 must be in [0, 1), got {self.beta1}")
        require(self.tau > 0, f"tau must be > 0, got {self.tau}")

    def _initial(self, slot: str, shapes: Shapes) -> Weights:
        start = self.tau**2 if slot == "v" else 0.0
        return [np.full(shape, start, dtype=np.float64) for shape in shapes]

    def _move(self, delta: np.ndarray, slots: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        m = self.beta1 * slots["m"] + (1 - self.beta1) * delta
        v = self.second_moment(slots["v"], delta * delta)
        return self.server_lr * m / (np.sqrt(v) + self.tau), {"m": m, "v": v}

    def second_moment(self, v: np.ndarray, delta_squared: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def check_beta2(beta2: float) -> None:
    require(0 <= beta2 < 1, f"beta2 must be in [0, 1), got {beta2}")
