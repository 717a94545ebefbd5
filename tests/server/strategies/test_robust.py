"""Median, trimmed mean and Multi-Krum: an outlier must not drag the aggregate."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fedge.server.strategies.base import Update, Weights
from fedge.server.strategies.krum import Krum
from fedge.server.strategies.median import Median
from fedge.server.strategies.trimmed_mean import TrimmedMean

TEMPLATE: Weights = [np.zeros(1, np.float32)]


def aggregate(strategy: Median | TrimmedMean | Krum, *values: float, n: int = 1) -> float:
    """Aggregate one-number updates, in the given arrival order."""
    agg = strategy.aggregator(TEMPLATE)
    for i, value in enumerate(values):
        agg.add(Update([np.array([value], np.float32)], n, client_id=f"c{i}"))
    return float(agg.result()[0][0])


def test_median_takes_the_middle_value_per_coordinate() -> None:
    agg = Median().aggregator([np.zeros(2, np.float32)])
    for row in ([1, 10], [2, 20], [100, -5]):
        agg.add(Update([np.array(row, np.float32)], 1))
    np.testing.assert_array_equal(agg.result()[0], [2, 10])  # sorted: 1 2 100 / -5 10 20


def test_median_of_an_even_count_averages_the_middle_two() -> None:
    assert aggregate(Median(), 1, 2, 3, 10) == 2.5


def test_median_ignores_claimed_example_counts() -> None:
    agg = Median().aggregator(TEMPLATE)
    for value, n in ((1, 1), (2, 1), (1000, 10**6)):
        agg.add(Update([np.array([value], np.float32)], n))
    assert agg.result()[0][0] == 2


def test_median_strategy_steps_by_the_median_delta() -> None:
    strategy = Median(server_lr=0.5)
    delta = strategy.aggregator(TEMPLATE)
    for value in (1, 4, 1000):
        delta.add(Update([np.array([value], np.float32)], 1))
    assert strategy.step([np.array([10], np.float32)], delta.result())[0][0] == 12  # 10 + 0.5·4


def test_trimmed_mean_drops_the_extremes_from_each_end() -> None:
    # β = 0.2 of 5 updates trims 1 from each end: 1 [2 3 4] 100 → 3
    assert aggregate(TrimmedMean(beta=0.2), 100, 2, 3, 1, 4) == 3


def test_trimmed_mean_rounds_the_trim_count_down() -> None:
    # β = 0.2 of 4 updates is 0.8 → trims 0: (1 + 2 + 3 + 10)/4 = 4
    assert aggregate(TrimmedMean(beta=0.2), 1, 2, 3, 10) == 4


def test_trimmed_mean_with_zero_beta_is_the_unweighted_mean() -> None:
    assert aggregate(TrimmedMean(beta=0.0), 1, 2, 6, n=7) == 3


@pytest.mark.parametrize("beta", [0.5, 0.7, -0.1])
def test_trimmed_mean_rejects_a_beta_that_would_trim_everything(beta: float) -> None:
    message = f"beta must be in [0, 0.5), got {beta}: trimming half from each end"
    with pytest.raises(ValueError, match=re.escape(message)):
        TrimmedMean(beta=beta)


def test_trimmed_mean_aggregator_refuses_to_trim_everything() -> None:
    from fedge.server.strategies.trimmed_mean import TrimmedMeanAggregator

    agg = TrimmedMeanAggregator(TEMPLATE, beta=0.5)  # built directly: the strategy forbids it
    agg.add(Update([np.array([1], np.float32)], 1))
    agg.add(Update([np.array([2], np.float32)], 1))
    with pytest.raises(ValueError, match="trimming 1 from each end of 2 updates leaves none"):
        agg.result()


# Krum on the points 0 1 2 3 100 with f = 1: each score sums the n − f − 2 = 2 nearest
# squared distances: 0 → 1+4 = 5, 1 → 1+1 = 2, 2 → 1+1 = 2, 3 → 1+4 = 5,
# 100 → 97² + 98² = 19013.


def test_krum_ignores_one_outlier() -> None:
    assert aggregate(Krum(num_byzantine=1), 0, 1, 2, 3, 100) == 1


def test_krum_scores_only_the_n_minus_f_minus_2_nearest() -> None:
    # points 0 0 10 11 12, f = 1, 2 nearest: 0 → 0+100, 0 → 0+100, 10 → 1+4, 11 → 1+1,
    # 12 → 1+4, so 11 wins; with 3 nearest 10 would (105 < 123), with 1 nearest 0 would
    assert aggregate(Krum(num_byzantine=1), 0, 0, 10, 11, 12) == 11


def test_krum_breaks_ties_by_arrival_order() -> None:
    assert aggregate(Krum(num_byzantine=1), 100, 3, 2, 1, 0) == 2


def test_multi_krum_averages_the_m_best_scored_updates() -> None:
    # the four lowest scores are 0 1 2 3: (0 + 1 + 2 + 3)/4 = 1.5
    assert aggregate(Krum(num_byzantine=1, num_selected=4), 0, 1, 2, 3, 100) == 1.5


def test_krum_measures_distance_over_all_tensors() -> None:
    agg = Krum(num_byzantine=1).aggregator([np.zeros(1, np.float32), np.zeros(1, np.float32)])
    for b in (0, 1, 2, 3, 100):  # same points as above, in the second tensor only
        agg.add(Update([np.array([7], np.float32), np.array([b], np.float32)], 1))
    assert [t[0] for t in agg.result()] == [7, 1]


def test_krum_needs_more_than_2f_plus_2_updates() -> None:
    with pytest.raises(ValueError, match="Krum with f=1 needs more than 4 updates, got 4"):
        aggregate(Krum(num_byzantine=1), 0, 1, 2, 3)


def test_multi_krum_cannot_select_more_than_n_minus_f() -> None:
    with pytest.raises(ValueError, match="cannot select 5 of 5 updates when 1 may be Byzantine"):
        aggregate(Krum(num_byzantine=1, num_selected=5), 0, 1, 2, 3, 100)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_byzantine": -1}, "num_byzantine must be an int >= 0, got -1"),
        ({"num_byzantine": 1.5}, "num_byzantine must be an int >= 0, got 1.5"),
        ({"num_selected": 0}, "num_selected must be an int >= 1, got 0"),
    ],
)
def test_krum_rejects_parameters_outside_their_range(params: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Krum(**params)  # type: ignore[arg-type]
