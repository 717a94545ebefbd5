"""FedProx (Li et al. 2020): FedAvg on the server, a proximal term on the clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedge.server.strategies.base import require
from fedge.server.strategies.fedavg import FedAvg


@dataclass(eq=False)
class FedProx(FedAvg):
    """Asks each client to add (μ/2)·‖w − w_global‖² to its loss, which limits client drift
    on heterogeneous data; μ = 0 is FedAvg. Li et al. tune μ over {0.001, 0.01, 0.1, 1}."""

    proximal_mu: float = 0.01
    name: ClassVar[str] = "fedprox"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.proximal_mu >= 0, f"proximal_mu must be >= 0, got {self.proximal_mu}")

    def configure(self, round: int) -> dict[str, float | int | str]:
        return {"proximal_mu": self.proximal_mu}
