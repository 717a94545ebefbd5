"""FedAdam (Reddi et al. 2021): Adam's second moment on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.fedopt import FedOpt, check_beta2


@dataclass(eq=False)
class FedAdam(FedOpt):
    """v ← β₂·v + (1 − β₂)·Δ²: an exponential average, so old rounds are forgotten."""

    beta2: float = 0.99
    name: ClassVar[str] = "fedadam"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_beta2(self.beta2)

    def second_moment(self, v: np.ndarray, delta_squared: np.ndarray) -> np.ndarray:
        return self.beta2 * v + (1 - self.beta2) * delta_squared
