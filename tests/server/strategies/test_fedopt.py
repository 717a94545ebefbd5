"""FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021), worked through by hand.

Shared rule: m ← β₁m + (1 − β₁)Δ;  v ← rule;  x ← x + η·m/(√v + τ);  m₀ = 0, v₀ = τ².
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from fedge.server.strategies.fedadagrad import FedAdagrad
from fedge.server.strategies.fedadam import FedAdam
from fedge.server.strategies.fedopt import FedOpt
from fedge.server.strategies.fedyogi import FedYogi


def vec(*values: float) -> list[np.ndarray]:
    return [np.array(values, np.float32)]


def test_fedadam_first_two_steps_match_the_hand_computation() -> None:
    strategy = FedAdam(server_lr=1.0, beta1=0.5, beta2=0.75, tau=2.0)
    # step 1, Δ = 2: m = 0.5·2 = 1; v = 0.75·4 + 0.25·4 = 4; x = 1/(2 + 2) = 0.25
    # (with bias correction it would be m̂ = 2, v̂ = 16, x = 2/6: the paper has none)
    # the second coordinate never moves: Δ = 0 keeps m = 0
    x1 = strategy.step(vec(0, 0), vec(2, 0))
    np.testing.assert_array_equal(x1[0], [0.25, 0])
    # step 2, Δ = 2: m = 0.5·1 + 0.5·2 = 1.5; v = 0.75·4 + 0.25·4 = 4; x += 1.5/4
    x2 = strategy.step(x1, vec(2, 0))
    np.testing.assert_array_equal(x2[0], [0.625, 0])


def test_fedadam_default_first_step() -> None:
    x = FedAdam().step(vec(0), vec(1))
    # m = 0.1; v = 0.99·1e-6 + 0.01 = 0.01000099; √v ≈ 0.10000495
    # x = 0.01 · 0.1 / (0.10000495 + 0.001) ≈ 0.0099005
    assert x[0][0] == pytest.approx(0.0099005, rel=1e-5)


def test_fedyogi_moves_v_towards_delta_squared_by_a_step_proportional_to_it() -> None:
    strategy = FedYogi(server_lr=1.0, beta1=0.5, beta2=0.5, tau=1.0)
    # step 1, Δ = 4: v = 1 − 0.5·16·sign(1 − 16) = 9; m = 2; x = 2/(3 + 1) = 0.5
    x1 = strategy.step(vec(0), vec(4))
    assert x1[0][0] == 0.5
    assert strategy.state()["v.0"][0] == 9
    # step 2, Δ = 2: v = 9 − 0.5·4·sign(9 − 4) = 7  (FedAdam would give 0.5·9 + 0.5·4 = 6.5)
    strategy.step(x1, vec(2))
    assert strategy.state()["v.0"][0] == 7


def test_fedadagrad_accumulates_squared_deltas() -> None:
    strategy = FedAdagrad(server_lr=1.0, beta1=0.5, tau=3.0)
    # step 1, Δ = 4: v = 9 + 16 = 25; m = 2; x = 2/(5 + 3) = 0.25
    x1 = strategy.step(vec(0), vec(4))
    assert x1[0][0] == 0.25
    # step 2, Δ = 0: v stays 25; m = 1; x = 0.25 + 1/8 = 0.375
    x2 = strategy.step(x1, vec(0))
    assert x2[0][0] == 0.375
    assert strategy.state()["v.0"][0] == 25


def test_fedopt_starts_v_at_tau_squared_and_m_at_zero() -> None:
    strategy = FedAdagrad(tau=2.0)
    strategy.step(vec(5), vec(0))
    state = strategy.state()
    assert (state["m.0"][0], state["v.0"][0]) == (0, 4)


@pytest.mark.parametrize("cls", [FedAdam, FedYogi])
def test_fedadam_and_fedyogi_defaults_are_the_papers(cls: type[FedOpt]) -> None:
    s = cls()
    assert (s.server_lr, s.beta1, s.beta2, s.tau) == (1e-2, 0.9, 0.99, 1e-3)  # type: ignore[attr-defined]


def test_fedadagrad_defaults_are_the_papers_and_have_no_beta2() -> None:
    s = FedAdagrad()
    assert (s.server_lr, s.beta1, s.tau) == (1e-2, 0.9, 1e-3)
    assert not hasattr(s, "beta2")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"beta1": 1.0}, "beta1 must be in [0, 1), got 1.0"),
        ({"beta1": -0.1}, "beta1 must be in [0, 1), got -0.1"),
        ({"beta2": 1.5}, "beta2 must be in [0, 1), got 1.5"),
        ({"tau": 0.0}, "tau must be > 0, got 0.0"),
        ({"server_lr": 0}, "server_lr must be > 0, got 0"),
    ],
)
def test_fedopt_rejects_hyperparameters_outside_their_range(params: dict[str, float], message: str) -> None:
    for cls in (FedAdam, FedYogi):
        with pytest.raises(ValueError, match=re.escape(message)):
            cls(**params)
