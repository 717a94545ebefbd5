"""Coordinate-wise median (Yin et al. 2018): robust to a minority of arbitrary updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedge.server.strategies.base import Aggregator, Buffered, StrategyBase, Weights
from fedge.shared.training import TrainConfig


class MedianAggregator(Buffered):
    """Each coordinate is the median over updates (the mean of the two middle ones when the
    count is even); unweighted, since num_examples is the client's unverified claim."""

    def combine(self, rows: np.ndarray) -> np.ndarray:
        return np.median(rows.astype(np.float64), axis=0)


@dataclass(eq=False)
class Median(StrategyBase):
    """Median delta, then x ← x + server_lr · Δ. Secure aggregation must be off."""

    name: ClassVar[str] = "median"
    secagg_compatible: ClassVar[bool] = False

    def aggregator(self, template: Weights, plan: TrainConfig | None = None) -> Aggregator:
        return MedianAggregator(template)
