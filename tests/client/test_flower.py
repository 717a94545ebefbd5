"""The Flower adapter: a NumPyClient loaded as a user names it, called as Flower would, checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedge.client.agent import AgentStopped, LocalTrainer
from fedge.client.flower import FlowerError, FlowerTrainer
from fedge.shared.models import external_spec, model_spec
from fedge.shared.training import TrainConfig

CLIENT = Path(__file__).with_name("flower_client.py")
START = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
EXTERNAL = json.dumps(external_spec(["arr_0", "arr_1"], START))
ZOO = json.dumps(model_spec("mlp", (2,), 3))


@pytest.mark.parametrize("name", ["make_client", "SoftmaxClient", "instance"])
def test_a_client_is_taken_as_it_is_or_made_by_its_class_or_factory(name):
    trainer = FlowerTrainer.load(f"{CLIENT}:{name}")
    assert callable(trainer.client.fit) and len(trainer.client.x) == 60


def test_fit_gets_the_plan_and_its_result_becomes_the_update():
    trainer = FlowerTrainer.load(f"{CLIENT}:make_client")
    plan = TrainConfig(epochs=2, batch_size=16, lr=0.5)
    delta, examples, metrics = trainer(EXTERNAL, START, plan, np.random.default_rng(0))
    config = trainer.client.configs[0]
    assert (config["round"], config["epochs"], config["local_epochs"], config["lr"]) == (1, 2, 2, 0.5)
    assert examples == 60 and [d.shape for d in delta] == [(2, 3), (3,)] and np.abs(delta[0]).sum() > 0
    assert set(metrics) == {"train_loss"}  # numbers travel; text does not
    # the update is what fit returned less what it was given
    trained = trainer.client.fit([s.copy() for s in START], config)[0]
    assert np.allclose(delta[0], trained[0]) and START[0].sum() == 0  # the global model was not written into


def test_integer_parameters_travel_as_float32_like_the_rest():
    """PyTorch's state_dict holds a BatchNorm's batch count as int64; the operator saved it as float32."""
    counted = Broken(fit=([np.ones((2, 3), np.float32), np.array([5, 6, 7], np.int64)], 5, {}))
    delta, _, _ = FlowerTrainer(counted)(EXTERNAL, START, TrainConfig(), np.random.default_rng(0))
    assert delta[1].dtype == np.float32 and delta[1].tolist() == [5.0, 6.0, 7.0]


def test_an_evaluate_without_a_numeric_loss_stops_the_agent():
    class Wordy(Broken):
        def evaluate(self, parameters, config):
            return "low", 5, {}

    with pytest.raises(AgentStopped, match="expected evaluate's loss as a number, got 'low'"):
        FlowerTrainer(Wordy()).score(EXTERNAL, START, 0.0)


def test_evaluate_scores_the_received_model():
    trainer = FlowerTrainer.load(f"{CLIENT}:make_client")
    examples, scores = trainer.score(EXTERNAL, START, 0.0)
    assert examples == 60 and scores["eval_loss"] == pytest.approx(np.log(3), rel=1e-4)
    assert 0 <= scores["eval_accuracy"] <= 1


def test_each_trainer_refuses_the_other_kind_of_task():
    flower = FlowerTrainer.load(f"{CLIENT}:instance")
    assert flower.refuses(EXTERNAL) is None and "only tasks with model = 'external'" in flower.refuses(ZOO)
    native = LocalTrainer(np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
    assert native.refuses(ZOO) is None and "the task's model is external" in native.refuses(EXTERNAL)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("flower_client", "expected MODULE:NAME"),
        ("{file}:missing", "has no missing"),
        ("{file}:data", "cannot make the client: TypeError"),  # a function that needs arguments
        ("{file}:initial_weights", "expected a Flower NumPyClient with fit and evaluate, got"),
    ],
)
def test_a_client_that_cannot_be_made_is_refused_with_the_reason(spec, reason):
    with pytest.raises(FlowerError, match=reason):
        FlowerTrainer.load(spec.format(file=CLIENT))


class Broken:
    def __init__(self, fit=None, error=None) -> None:
        self.returned, self.error = fit, error

    def fit(self, parameters, config):
        if self.error:
            raise self.error
        return self.returned

    def evaluate(self, parameters, config):
        return 0.0, 0, {}


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (Broken(error=RuntimeError("CUDA out of memory")), "fit failed: RuntimeError: CUDA out of memory"),
        (Broken(fit=START), r"expected fit to return \(parameters, num_examples, metrics\)"),
        (Broken(fit=(START[:1], 5, {})), "expected fit to return 2 arrays, got 1"),
        (Broken(fit=([np.zeros((3, 2)), START[1]], 5, {})), r"parameter 0 as numbers of shape \(2, 3\)"),
        (Broken(fit=([np.full((2, 3), "x"), START[1]], 5, {})), r"parameter 0 as numbers of shape \(2, 3\), got <U1"),
        (Broken(fit=([np.full((2, 3), np.nan), START[1]], 5, {})), "parameter 0 holds NaN"),
        (Broken(fit=(START, 0, {})), "num_examples as an int >= 1, got 0"),
    ],
)
def test_a_fit_the_round_cannot_use_stops_the_agent_with_the_reason(client, reason):
    with pytest.raises(AgentStopped, match=reason):
        FlowerTrainer(client)(EXTERNAL, START, TrainConfig(), np.random.default_rng(0))
