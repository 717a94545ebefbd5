"""FedExP (Jhunjhunwala et al., ICLR 2023): a server step that grows as the clients disagree.

    Δ̄ = Σ pᵢΔᵢ                      pᵢ = nᵢ / Σ n, FedAvg's weights
    η = max(1, Σ pᵢ‖Δᵢ‖² / (2 (‖Δ̄‖² + ε)))
    x ← x + server_lr · η · Δ̄

While the clients pull the same way, ‖Δ̄‖² is close to their mean ‖Δᵢ‖² and η stays 1
(FedAvg). When label skew makes them pull apart, averaging cancels most of each step and η
extrapolates, as a fixed server_lr > 1 would, but only when it is safe. ε damps η near
convergence, where ‖Δ̄‖² shrinks towards 0. The step needs each update's norm, so the
aggregator keeps Σ nᵢ‖Δᵢ‖² beside the streaming mean (still O(P)) and returns η·Δ̄: the
step then stays FedAvg's and a failed round leaves nothing behind. The norms are
per-client, so secure aggregation (which shows the server only the sum) is refused.

Extrapolated steps overshoot and the global model oscillates about where FedAvg would be, so
the paper reads the model out as the mean of the last two iterates (``readout_average``): that
mean is what the coordinator evaluates and publishes, while clients train on from the version
itself. On Fashion-MNIST label skew the mean was 3 to 5 points above an oscillating version
(rounds 13, 15, 27), 0.2 below a good one (round 30): docs/onnx.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.base import Aggregator, ScaledMean, StrategyBase, Update, Weights, require
from fedge.shared.training import TrainConfig


def squared_norm(tensors: Weights) -> float:
    """‖x‖² over all tensors. A float32 tensor is summed by BLAS as it is: a float64 copy per
    update would double the fold's memory traffic (WeightedMean avoids it), and a step size
    needs no more than float32's precision; other dtypes go through float64."""
    total = 0.0
    for tensor in tensors:
        flat = np.ravel(tensor)
        if flat.dtype != np.float32:
            flat = flat.astype(np.float64)
        total += float(np.dot(flat, flat))
    return total


class ExtrapolatingMean(ScaledMean):
    """The weighted mean, scaled by FedExP's η once the round's updates are all in."""

    def __init__(self, template: Weights, epsilon: float) -> None:
        super().__init__(template)
        self.epsilon = epsilon
        self._weighted_norms = 0.0  # Σ nᵢ‖Δᵢ‖²

    def _fold(self, update: Update) -> None:
        super()._fold(update)
        self._weighted_norms += update.num_examples * squared_norm(update.delta)

    def _scale(self, mean: Weights) -> float:
        spread = self._weighted_norms / self.total_examples
        return max(1.0, spread / (2 * (squared_norm(mean) + self.epsilon)))


@dataclass(eq=False)
class FedExP(StrategyBase):
    """FedAvg with an adaptive, extrapolating server step. Secure aggregation must be off."""

    epsilon: float = 1e-3
    name: ClassVar[str] = "fedexp"
    secagg_compatible: ClassVar[bool] = False
    readout_average: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.epsilon > 0, f"epsilon must be > 0, got {self.epsilon}")

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator:
        return ExtrapolatingMean(template, self.epsilon)
