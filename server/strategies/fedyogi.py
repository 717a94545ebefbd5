"""FedYogi (Reddi et al. 2021): Yogi's additive second moment on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.fedopt import FedOpt, check_beta2


@dataclass(eq=False)
class FedYogi(FedOpt):
    """v ← v − (1 − β₂)·Δ²·sign(v − Δ²): v moves towards Δ² by a step proportional to Δ²,
    not to v, so one large round cannot blow the effective rate up or down at once."""

    beta2: float = 0.99
    name: ClassVar[str] = "fedyogi"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_beta2(self.beta2)

    def second_moment(self, v: np.ndarray, delta_squared: np.ndarray) -> np.ndarray:
        return v - (1 - self.beta2) * delta_squared * np.sign(v - delta_squared)
