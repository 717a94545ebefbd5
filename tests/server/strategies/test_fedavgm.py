"""FedAvgM: server momentum carries part of every past delta into the next step."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.server.strategies.fedavgm import FedAvgM


def vec(*values: float) -> list[np.ndarray]:
    return [np.array(values, np.float32)]


def test_fedavgm_accumulates_momentum_across_rounds() -> None:
    strategy = FedAvgM(server_lr=1.0, momentum=0.5)
    x1 = strategy.step(vec(0), vec(2))  # v = 2,            x = 0 + 2 = 2
    x2 = strategy.step(x1, vec(2))  # v = 0.5·2 + 2 = 3, x = 2 + 3 = 5
    x3 = strategy.step(x2, vec(0))  # v = 0.5·3 + 0 = 1.5, x = 6.5
    assert [x[0][0] for x in (x1, x2, x3)] == [2, 5, 6.5]


def test_fedavgm_server_lr_scales_the_velocity() -> None:
    strategy = FedAvgM(server_lr=0.5, momentum=0.5)
    x1 = strategy.step(vec(0), vec(2))  # v = 2, x = 0.5·2 = 1
    x2 = strategy.step(x1, vec(2))  # v = 3, x = 1 + 0.5·3 = 2.5
    assert x2[0][0] == 2.5


def test_fedavgm_with_zero_momentum_is_fedavg() -> None:
    strategy = FedAvgM(server_lr=1.0, momentum=0.0)
    x1 = strategy.step(vec(0), vec(2))
    assert strategy.step(x1, vec(3))[0][0] == 5


def test_fedavgm_defaults_move_like_fedavg_once_momentum_builds() -> None:
    strategy = FedAvgM()
    x = vec(0)
    for _ in range(200):
        before = x[0][0]
        x = strategy.step(x, vec(1))
    # v → 1/(1 − 0.9) = 10, so each step → 0.1·10 = 1, FedAvg's step for Δ = 1
    assert x[0][0] - before == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("beta", [1.0, -0.1])
def test_fedavgm_rejects_momentum_outside_zero_one(beta: float) -> None:
    with pytest.raises(ValueError, match=rf"momentum must be in \[0, 1\), got {beta}"):
        FedAvgM(momentum=beta)
