"""What the coordinator relies on from every strategy: pure steps, restorable state."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fedge.server.strategies import STRATEGIES, Strategy, Update, Weights, make_strategy
from fedge.shared.training import TrainConfig

PLAN = TrainConfig(batch_size=2)  # what the round's clients were sent (fednova reads their local steps)
GLOBAL: Weights = [np.array([[1, 2], [3, 4]], np.float32), np.array([5], np.float32)]


@pytest.fixture(params=sorted(STRATEGIES))
def strategy(request: pytest.FixtureRequest) -> Strategy:
    return make_strategy(request.param)


def run_round(strategy: Strategy, weights: Weights, seed: int) -> Weights:
    """One committed round with five clients (enough for Krum with f = 1)."""
    rng = np.random.default_rng(seed)
    agg = strategy.aggregator(weights, PLAN)
    for client in range(5):
        delta = [rng.normal(size=w.shape).astype(np.float32) for w in weights]
        agg.add(Update(delta, num_examples=client + 1, client_id=f"c{client}"))
    return strategy.step(weights, agg.result())


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_step_returns_new_float32_arrays_and_leaves_inputs_untouched(strategy: Strategy) -> None:
    weights = [w.copy() for w in GLOBAL]
    delta = [np.full_like(w, 0.5) for w in GLOBAL]
    new = strategy.step(weights, delta)
    for before, after, d in zip(GLOBAL, weights, delta, strict=True):
        np.testing.assert_array_equal(after, before)
        np.testing.assert_array_equal(d, np.full_like(before, 0.5))
    assert all(n.dtype == np.float32 and n.shape == w.shape for n, w in zip(new, GLOBAL, strict=True))
    assert not any(np.shares_memory(n, w) for n in new for w in [*weights, *delta])


def test_state_round_trips_and_continues_identically(strategy: Strategy) -> None:
    weights = run_round(strategy, GLOBAL, seed=1)
    weights = run_round(strategy, weights, seed=2)
    restored = make_strategy(strategy.name)
    restored.load_state(strategy.state())
    assert_same_state(restored.state(), strategy.state())
    expected = run_round(strategy, weights, seed=3)
    for a, b in zip(run_round(restored, weights, seed=3), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fresh_state_loads_into_a_fresh_strategy(strategy: Strategy) -> None:
    restored = make_strategy(strategy.name)
    restored.load_state(strategy.state())
    assert_same_state(restored.state(), {"steps": np.array(0)})


def test_state_counts_committed_steps(strategy: Strategy) -> None:
    weights = run_round(strategy, GLOBAL, seed=1)
    run_round(strategy, weights, seed=2)
    assert strategy.state()["steps"] == 2


def test_failed_step_leaves_state_unchanged(strategy: Strategy) -> None:
    run_round(strategy, GLOBAL, seed=1)
    before = strategy.state()
    with pytest.raises(ValueError, match="delta: expected 2 tensors"):
        strategy.step(GLOBAL, GLOBAL[:1])
    assert_same_state(strategy.state(), before)


def test_abandoned_round_leaves_state_unchanged(strategy: Strategy) -> None:
    run_round(strategy, GLOBAL, seed=1)
    before = strategy.state()
    agg = strategy.aggregator(GLOBAL, PLAN)  # a round that never reaches commit
    agg.add(Update([np.ones_like(w) for w in GLOBAL], 3))
    assert_same_state(strategy.state(), before)


def test_state_is_a_copy(strategy: Strategy) -> None:
    run_round(strategy, GLOBAL, seed=1)
    state = strategy.state()
    for value in state.values():
        value[...] = 0
    assert strategy.state()["steps"] == 1


def test_load_state_rejects_unknown_keys(strategy: Strategy) -> None:
    with pytest.raises(ValueError, match=re.escape("expected keys ['steps'], got ['rounds']")):
        strategy.load_state({"rounds": np.array(1)})


@pytest.mark.parametrize("steps", [np.array(-1), np.array(1.5), np.array([1, 2])])
def test_load_state_rejects_a_bad_step_count(strategy: Strategy, steps: np.ndarray) -> None:
    with pytest.raises(ValueError, match="steps must be a non-negative integer scalar"):
        strategy.load_state({"steps": steps})


def test_load_state_rejects_a_missing_moment() -> None:
    adam = make_strategy("fedadam")
    message = "fedadam state: expected keys ['m.0', 'steps', 'v.0'], got ['m.0', 'steps']"
    with pytest.raises(ValueError, match=re.escape(message)):
        adam.load_state({"steps": np.array(1), "m.0": np.zeros(2)})


def test_load_state_rejects_moments_of_different_shapes() -> None:
    adam = make_strategy("fedadam")
    state = {"steps": np.array(1), "m.0": np.zeros(2), "v.0": np.zeros(3)}
    message = "fedadam 'v': expected 1 tensors of shapes [(2,)], got 1 tensors of shapes [(3,)]"
    with pytest.raises(ValueError, match=re.escape(message)):
        adam.load_state(state)


def test_step_rejects_state_saved_for_another_model() -> None:
    momentum = make_strategy("fedavgm")
    momentum.load_state({"steps": np.array(1), "momentum.0": np.zeros(3)})
    message = "fedavgm state 'momentum': expected 1 tensors of shapes [(2,)], got 1 tensors of shapes [(3,)]"
    with pytest.raises(ValueError, match=re.escape(message)):
        momentum.step([np.zeros(2, np.float32)], [np.ones(2, np.float32)])
