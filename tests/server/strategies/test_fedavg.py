"""FedAvg and FedProx: the mean delta applied as is; FedProx only adds a client setting."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fedge.server.strategies.base import Update
from fedge.server.strategies.fedavg import FedAvg
from fedge.server.strategies.fedprox import FedProx


def vec(*values: float) -> list[np.ndarray]:
    return [np.array(values, np.float32)]


def test_fedavg_weights_updates_by_examples() -> None:
    strategy = FedAvg()
    agg = strategy.aggregator(vec(0, 0))
    agg.add(Update(vec(1, -1), 10))
    agg.add(Update(vec(3, 1), 30))
    new = strategy.step(vec(10, 10), agg.result())
    # mean delta: (10·1 + 30·3)/40 = 2.5 and (10·-1 + 30·1)/40 = 0.5
    np.testing.assert_array_equal(new[0], [12.5, 10.5])


def test_fedavg_server_lr_scales_the_step() -> None:
    new = FedAvg(server_lr=0.5).step(vec(10, 10), vec(2, -4))
    # 10 + 0.5·2 = 11, 10 + 0.5·-4 = 8
    np.testing.assert_array_equal(new[0], [11, 8])


def test_fedavg_asks_clients_for_nothing_extra() -> None:
    assert FedAvg().configure(1) == {}


def test_fedavg_state_holds_only_the_step_count() -> None:
    strategy = FedAvg()
    strategy.step(vec(0), vec(1))
    strategy.step(vec(1), vec(1))
    assert strategy.state() == {"steps": 2}


def test_fedavg_rejects_delta_of_other_shapes() -> None:
    message = "delta: expected 1 tensors of shapes [(2,)], got 1 tensors of shapes [(3,)]"
    with pytest.raises(ValueError, match=re.escape(message)):
        FedAvg().step(vec(0, 0), vec(1, 2, 3))


@pytest.mark.parametrize("lr", [0, -1.0])
def test_fedavg_rejects_a_server_lr_that_is_not_positive(lr: float) -> None:
    with pytest.raises(ValueError, match=f"server_lr must be > 0, got {lr}"):
        FedAvg(server_lr=lr)


def test_fedprox_asks_clients_for_proximal_mu() -> None:
    assert FedProx(proximal_mu=0.1).configure(3) == {"proximal_mu": 0.1}


def test_fedprox_server_step_is_fedavg() -> None:
    np.testing.assert_array_equal(FedProx().step(vec(1), vec(2))[0], [3])


def test_fedprox_rejects_negative_mu() -> None:
    with pytest.raises(ValueError, match=re.escape("proximal_mu must be >= 0, got -0.5")):
        FedProx(proximal_mu=-0.5)
