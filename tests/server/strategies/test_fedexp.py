"""FedExP: the server step extrapolates by how much the clients' deltas cancel out."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.server.strategies import Update, make_strategy
from fedge.server.strategies.base import readout
from fedge.server.strategies.fedexp import FedExP


def vec(*values: float) -> list[np.ndarray]:
    return [np.array(values, np.float32)]


def aggregate(strategy: FedExP, deltas: list[list[float]], examples: list[int] | None = None) -> tuple[float, list]:
    agg = strategy.aggregator(vec(0, 0))
    for i, delta in enumerate(deltas):
        agg.add(Update(vec(*delta), num_examples=(examples or [1] * len(deltas))[i], client_id=f"c{i}"))
    mean = agg.result()
    return agg.step_size, mean


def test_agreeing_clients_get_fedavgs_step() -> None:
    step, mean = aggregate(FedExP(), [[1, 0], [1, 0], [1, 0]])
    assert step == 1.0
    np.testing.assert_array_equal(mean[0], [1, 0])


def test_disagreeing_clients_get_a_longer_step() -> None:
    # Δ̄ = (0.5, 0.5), ‖Δ̄‖² = 0.5; mean ‖Δᵢ‖² = 1; η = 1 / (2 · (0.5 + ε))
    step, mean = aggregate(FedExP(epsilon=1e-3), [[1, 0], [0, 1], [1, 0], [0, 1]])
    assert step == 1.0  # exactly at the boundary, max(1, 0.999) = 1
    step, mean = aggregate(FedExP(epsilon=1e-3), [[1, 0], [-1, 0], [0, 1]])
    expected = 1 / (2 * (1 / 9 + 1e-3))  # mean ‖Δᵢ‖² = 1, Δ̄ = (0, 1/3)
    assert step == pytest.approx(expected)
    np.testing.assert_allclose(mean[0], [0, expected / 3], rtol=1e-6)


def test_the_spread_is_weighted_by_examples_like_the_mean() -> None:
    # weights 3 : 1 → Δ̄ = (0.75, 0.25, ...); mean ‖Δᵢ‖² = 1; ‖Δ̄‖² = 0.625 → η = 0.8 → 1
    step, _ = aggregate(FedExP(), [[1, 0], [0, 1]], examples=[3, 1])
    assert step == 1.0
    # opposite clients, 3 : 1 → Δ̄ = (0.5, 0), ‖Δ̄‖² = 0.25, mean ‖Δᵢ‖² = 1 → η = 1 / (2 · 0.251)
    step, mean = aggregate(FedExP(), [[1, 0], [-1, 0]], examples=[3, 1])
    assert step == pytest.approx(1 / 0.502)
    np.testing.assert_allclose(mean[0], [0.5 / 0.502, 0], rtol=1e-6)


def test_epsilon_bounds_the_step_when_the_mean_cancels() -> None:
    step, mean = aggregate(FedExP(epsilon=0.5), [[1, 0], [-1, 0]])
    assert step == pytest.approx(1.0)  # 1 / (2 · (0 + 0.5))
    np.testing.assert_array_equal(mean[0], [0, 0])


def test_the_step_applies_server_lr_to_the_extrapolated_mean() -> None:
    strategy = FedExP(server_lr=0.5)
    _, mean = aggregate(strategy, [[1, 0], [-1, 0], [0, 1]])
    new = strategy.step(vec(1, 1), mean)
    np.testing.assert_allclose(new[0], [1, 1 + 0.5 * mean[0][1]], rtol=1e-6)


def test_a_rejected_update_does_not_change_the_step() -> None:
    agg = FedExP().aggregator(vec(0, 0))
    agg.add(Update(vec(1, 0), num_examples=1, client_id="a"))
    with pytest.raises(ValueError, match="non-finite"):
        agg.add(Update(vec(np.inf, 0), num_examples=1, client_id="b"))
    agg.add(Update(vec(1, 0), num_examples=1, client_id="c"))
    agg.result()
    assert agg.step_size == 1.0


def test_epsilon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="epsilon must be > 0, got 0"):
        make_strategy("fedexp", epsilon=0)


def test_fedexp_reads_a_version_out_as_its_mean_with_the_one_before_and_fedavg_as_itself() -> None:
    previous, current = vec(1, 3), vec(2, 5)
    np.testing.assert_array_equal(readout(FedExP(), previous, current)[0], [1.5, 4])
    assert readout(make_strategy("fedavg"), previous, current) is current
