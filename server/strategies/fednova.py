"""FedNova (Wang et al., NeurIPS 2020): average what each client did per unit of local work.

A round of epochs gives a client with nᵢ samples τᵢ = epochs · ⌈nᵢ / batch⌉ local steps, so
under size skew FedAvg's Σ pᵢΔᵢ counts a large client twice: once by its weight pᵢ = nᵢ / Σ n,
once by the length of its Δᵢ. The model then drifts towards the minimum of Σ pᵢτᵢFᵢ, not of
Σ pᵢFᵢ (objective inconsistency). FedNova normalises each update by its local work aᵢ and
scales the mean back by the cohort's:

    Δ = τ_eff · Σ pᵢ Δᵢ / aᵢ          τ_eff = Σ pᵢ aᵢ
    aᵢ = Σₜ (1 − ρ^(τᵢ−t+1)) / (1 − ρ)    (heavy-ball momentum ρ; aᵢ = τᵢ without momentum)

aᵢ is how many times the local steps' gradients were added into Δᵢ in all. The server knows
τᵢ from the plan it sent and the nᵢ a client reports, so clients do nothing new. In the
aggregator's terms this is the mean weighted by nᵢ / aᵢ, times
s = (Σ nᵢaᵢ)(Σ nᵢ/aᵢ) / (Σ nᵢ)² ≥ 1, which each round records as ``server_step``: with equal
local work s = 1 and FedNova is FedAvg. Per-client weights need each update in the clear, so
secure aggregation is refused. With Adam (normalised steps) aᵢ is τᵢ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedge.server.strategies.base import Aggregator, ScaledMean, StrategyBase, Update, Weights
from fedge.shared.training import TrainConfig


def local_work(steps: int, momentum: float) -> float:
    """aᵢ: Σ over the local steps of how far each step's gradient reached into the update."""
    if steps < 1:
        raise ValueError(f"expected at least one local step, got {steps}")
    if momentum == 0:
        return float(steps)
    return (steps - momentum * (1 - momentum**steps) / (1 - momentum)) / (1 - momentum)


class NormalizedMean(ScaledMean):
    """Σ (nᵢ/aᵢ)Δᵢ / Σ (nᵢ/aᵢ), scaled by s once the round's updates are all in."""

    def __init__(self, template: Weights, plan: TrainConfig) -> None:
        super().__init__(template)
        self.plan = plan
        self.momentum = plan.momentum if plan.optimizer == "sgd" else 0.0
        self._examples_work = 0.0  # Σ nᵢaᵢ

    def _work(self, update: Update) -> float:
        return local_work(self.plan.local_steps(int(update.num_examples)), self.momentum)

    def _weight(self, update: Update) -> float:
        return update.num_examples / self._work(update)

    def _fold(self, update: Update) -> None:
        super()._fold(update)
        self._examples_work += update.num_examples * self._work(update)

    def _scale(self, mean: Weights) -> float:
        return self._examples_work * self._weight_sum / float(self.total_examples) ** 2


@dataclass(eq=False)
class FedNova(StrategyBase):
    """FedAvg with each update normalised by its local work. Secure aggregation must be off."""

    name: ClassVar[str] = "fednova"
    secagg_compatible: ClassVar[bool] = False

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator:
        if plan is None:
            raise ValueError("fednova needs the round's training plan to know each client's local steps")
        return NormalizedMean(template, plan)
