"""FedNova: each update counts per unit of its local work, so large clients stop counting twice."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.server.strategies import Update, WeightedMean, make_strategy
from fedge.server.strategies.fednova import FedNova, local_work
from fedge.shared.nn.core import Parameter, Variable
from fedge.shared.nn.optimizers import SGD
from fedge.shared.training import TrainConfig, batches


def vec(*values: float) -> list[np.ndarray]:
    return [np.array(values, np.float32)]


def aggregate(plan: TrainConfig, deltas: list[list[float]], examples: list[int]) -> tuple[float, np.ndarray]:
    agg = FedNova().aggregator(vec(0, 0), plan)
    for i, (delta, n) in enumerate(zip(deltas, examples, strict=True)):
        agg.add(Update(vec(*delta), num_examples=n, client_id=f"c{i}"))
    mean = agg.result()
    return agg.step_size, mean[0]


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("steps", [1, 2, 7, 63])
def test_local_work_is_how_far_the_engines_sgd_moves_under_a_unit_gradient(steps: int, momentum: float) -> None:
    param = Parameter(np.zeros(1, np.float32))
    optimizer = SGD(lr=1.0, momentum=momentum)
    for _ in range(steps):
        param.grad = Variable(np.ones(1, np.float32), requires_grad=False)
        optimizer.step([param])
    assert local_work(steps, momentum) == pytest.approx(-float(param.data[0]), rel=1e-5)


@pytest.mark.parametrize(
    "plan", [TrainConfig(batch_size=10), TrainConfig(epochs=3, batch_size=16), TrainConfig(steps=5)]
)
@pytest.mark.parametrize("n", [1, 10, 11, 40])
def test_the_plans_local_steps_are_the_batches_a_device_takes(plan: TrainConfig, n: int) -> None:
    assert plan.local_steps(n) == len(list(batches(n, plan, np.random.default_rng(0))))


def test_equal_local_work_is_fedavg() -> None:
    deltas, examples = [[1, 0], [0, 3], [2, 2]], [10, 30, 5]
    step, mean = aggregate(TrainConfig(steps=4), deltas, examples)  # every client takes 4 steps
    reference = WeightedMean(vec(0, 0))
    for i, (delta, n) in enumerate(zip(deltas, examples, strict=True)):
        reference.add(Update(vec(*delta), n, f"c{i}"))
    assert step == pytest.approx(1.0)
    np.testing.assert_allclose(mean, reference.result()[0], rtol=1e-6)


def test_a_large_client_counts_by_its_examples_not_also_by_its_steps() -> None:
    # batch 10, no momentum: 10 samples → 1 step, 30 samples → 3 steps; p = (1/4, 3/4)
    # Σ pᵢΔᵢ/aᵢ = (1/4)(1, 0) + (3/4)(0, 1) = (0.25, 0.75); τ_eff = 1/4 + 9/4 = 2.5 → (0.625, 1.875)
    # (FedAvg: (0.25, 2.25), pulled towards the large client)
    step, mean = aggregate(TrainConfig(batch_size=10, momentum=0.0), [[1, 0], [0, 3]], [10, 30])
    np.testing.assert_allclose(mean, [0.625, 1.875], rtol=1e-6)
    assert step == pytest.approx(2.5 * (10 / 1 + 30 / 3) / 40)  # (Σ nᵢaᵢ)(Σ nᵢ/aᵢ)/N² = 1.25


def test_momentum_counts_in_the_local_work() -> None:
    plan = TrainConfig(batch_size=10, momentum=0.9)
    a_small, a_large = local_work(1, 0.9), local_work(3, 0.9)
    p = np.array([0.25, 0.75])
    expected = (p @ [a_small, a_large]) * (p[0] * np.array([1, 0]) / a_small + p[1] * np.array([0, 3]) / a_large)
    _, mean = aggregate(plan, [[1, 0], [0, 3]], [10, 30])
    np.testing.assert_allclose(mean, expected, rtol=1e-6)


def test_a_rejected_update_leaves_no_trace() -> None:
    plan = TrainConfig(batch_size=10, momentum=0.0)
    agg = FedNova().aggregator(vec(0, 0), plan)
    agg.add(Update(vec(1, 0), num_examples=10, client_id="a"))
    with pytest.raises(ValueError, match="non-finite"):
        agg.add(Update(vec(np.nan, 0), num_examples=1000, client_id="b"))
    agg.add(Update(vec(0, 3), num_examples=30, client_id="c"))
    np.testing.assert_allclose(agg.result()[0], [0.625, 1.875], rtol=1e-6)


def test_fednova_needs_the_rounds_plan() -> None:
    with pytest.raises(ValueError, match="needs the round's training plan"):
        make_strategy("fednova").aggregator(vec(0, 0))
    assert not FedNova.secagg_compatible
