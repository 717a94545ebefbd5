"""Coordinate-wise trimmed mean (Yin et al. 2018): drop the extremes, average the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.base import Aggregator, Buffered, StrategyBase, Weights, require
from fedge.shared.training import TrainConfig


class TrimmedMeanAggregator(Buffered):
    """Per coordinate, sort the n values, drop ⌊β·n⌋ from each end, average the rest.

    The count rounds down (as scipy's ``trim_mean`` does): with β = 0.1 and 9 updates
    nothing is trimmed, so pick β with the cohort size in mind.
    """

    def __init__(self, template: Weights, beta: float) -> None:
        super().__init__(template)
        self.beta = beta

    def combine(self, rows: np.ndarray) -> np.ndarray:
        n = rows.shape[0]
        cut = int(self.beta * n)
        require(2 * cut < n, f"trimming {cut} from each end of {n} updates leaves none")
        kept = np.sort(rows, axis=0)[cut : n - cut]
        return kept.mean(axis=0, dtype=np.float64)


@dataclass(eq=False)
class TrimmedMean(StrategyBase):
    """Trimmed-mean delta, then x ← x + server_lr · Δ. Secure aggregation must be off."""

    beta: float = 0.1
    name: ClassVar[str] = "trimmed_mean"
    secagg_compatible: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            0 <= self.beta < 0.5,
            f"beta must be in [0, 0.5), got {self.beta}: trimming half from each end would trim everything",
        )

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator:
        return TrimmedMeanAggregator(template, self.beta)
