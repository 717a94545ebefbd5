"""FedAdagrad (Reddi et al. 2021): Adagrad's accumulated second moment on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.fedopt import FedOpt


@dataclass(eq=False)
class FedAdagrad(FedOpt):
    """v ← v + Δ²: v only grows, so each coordinate's rate decays with its own history."""

    name: ClassVar[str] = "fedadagrad"

    def second_moment(self, v: np.ndarray, delta_squared: np.ndarray) -> np.ndarray:
        return v + delta_squared
