"""The Python device's trainer: what it trains on, and how it scores the model it receives."""

from __future__ import annotations

import json

import numpy as np

from fedge.client.agent import LocalTrainer
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.training import TrainConfig, evaluate, holdout_split


def _device() -> tuple[LocalTrainer, str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(size=(60, 8)) + y[:, None]).astype(np.float32)  # three separable clusters
    spec = model_spec("mlp", (8,), 3)
    return LocalTrainer(x, y), json.dumps(spec), Model(spec, seed=1).get_weights()


def test_with_a_holdout_the_device_scores_the_received_model_on_samples_it_never_trains_on():
    trainer, spec_json, start = _device()
    _, held = holdout_split(60, 0.25)
    received = Model(json.loads(spec_json))
    received.set_weights(start)
    before = evaluate(received, trainer.x[held], trainer.y[held])

    plan = TrainConfig(epochs=3, batch_size=8, lr=0.1, holdout=0.25)
    delta, examples, metrics = trainer(spec_json, start, plan, np.random.default_rng(2))
    assert examples == 45  # the update weighs what trained
    assert metrics["eval_loss"] == before.loss and metrics["eval_accuracy"] == before.accuracy
    received.set_weights([s + d for s, d in zip(start, delta, strict=True)])
    assert evaluate(received, trainer.x[held], trainer.y[held]).loss < before.loss


def test_without_a_holdout_every_sample_trains_and_no_eval_metric_is_sent():
    trainer, spec_json, start = _device()
    _, examples, metrics = trainer(spec_json, start, TrainConfig(batch_size=8), np.random.default_rng(2))
    assert examples == 60
    assert set(metrics) == {"train_loss", "train_accuracy"}
