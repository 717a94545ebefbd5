"""(Multi-)Krum (Blanchard et al. 2017): average the updates that sit closest to the others.

Each update's score is the sum of squared distances to its n − f − 2 nearest neighbours;
the m lowest-scoring updates are averaged (unweighted). m = 1 is Krum. Krum's guarantee
needs n > 2f + 2, so fewer updates is an error rather than a silently weaker rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.base import Aggregator, Buffered, StrategyBase, Weights, require
from fedge.shared.training import TrainConfig


def krum_scores(rows: np.ndarray, num_byzantine: int) -> np.ndarray:
    """Score of each row: squared distances to its n − f − 2 nearest other rows, summed."""
    n = rows.shape[0]
    points = rows.astype(np.float64)
    neighbours = n - num_byzantine - 2
    scores = np.empty(n)
    for i in range(n):
        distances = np.delete(((points - points[i]) ** 2).sum(axis=1), i)
        scores[i] = np.sort(distances)[:neighbours].sum()
    return scores


class KrumAggregator(Buffered):
    """Scores once over the whole cohort; ties go to the update that arrived first."""

    def __init__(self, template: Weights, num_byzantine: int, num_selected: int) -> None:
        super().__init__(template)
        self.num_byzantine = num_byzantine
        self.num_selected = num_selected

    def combine(self, rows: np.ndarray) -> np.ndarray:
        n, f, m = rows.shape[0], self.num_byzantine, self.num_selected
        require(n > 2 * f + 2, f"Krum with f={f} needs more than {2 * f + 2} updates, got {n}")
        require(m <= n - f, f"cannot select {m} of {n} updates when {f} may be Byzantine")
        chosen = np.argsort(krum_scores(rows, f), kind="stable")[:m]
        return rows[chosen].mean(axis=0, dtype=np.float64)


@dataclass(eq=False)
class Krum(StrategyBase):
    """Multi-Krum delta, then x ← x + server_lr · Δ. Secure aggregation must be off."""

    num_byzantine: int = 1
    num_selected: int = 1
    name: ClassVar[str] = "krum"
    secagg_compatible: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        f, m = self.num_byzantine, self.num_selected
        whole = int | np.integer
        require(isinstance(f, whole) and f >= 0, f"num_byzantine must be an int >= 0, got {f!r}")
        require(isinstance(m, whole) and m >= 1, f"num_selected must be an int >= 1, got {m!r}")

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator:
        return KrumAggregator(template, self.num_byzantine, self.num_selected)
