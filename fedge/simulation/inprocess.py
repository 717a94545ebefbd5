"""The in-process backend: every virtual client trains in this process, one after another.

A round here walks the same phases a coordinator's does — select a cohort, configure it,
let each client train from the global weights and send back its update (a delta), aggregate
the updates as they arrive (memory O(P), not O(N·P)), commit the next global model, evaluate
it on the held-out split no client trains on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from fedge.server.strategies import make_strategy
from fedge.server.strategies.base import Update
from fedge.shared import data
from fedge.shared.models import model_spec
from fedge.shared.nn import Model, Weights
from fedge.shared.training import TrainConfig, evaluate, fit
from fedge.simulation.config import SimulationConfig


@dataclass(frozen=True)
class Federation:
    """What a simulation runs on: the clients' shares, the held-out split and the model spec."""

    splits: data.Splits
    clients: list[data.Dataset]
    spec: dict

    @classmethod
    def from_config(cls, config: SimulationConfig) -> Federation:
        splits = data.load(config.dataset, **config.dataset_options)
        parts = data.partition(splits.train, config.partition, config.clients, config.seed)
        spec = model_spec(config.model, splits.train.sample_shape, splits.train.num_classes)
        return cls(splits, [splits.train.subset(p) for p in parts], spec)


def client_rng(seed: int, round_number: int, client: int) -> np.random.Generator:
    """Each client's shuffling depends only on (seed, round, client): order cannot change results."""
    return np.random.default_rng([seed, round_number, client])


def select(rng: np.random.Generator, population: int, per_round: int | None) -> list[int]:
    if per_round is None or per_round >= population:
        return list(range(population))
    return sorted(rng.choice(population, size=per_round, replace=False).tolist())


def run_rounds(config: SimulationConfig, federation: Federation) -> Iterator[dict]:
    """Yield one metrics record per committed round."""
    model = Model(federation.spec, seed=config.seed)
    strategy = make_strategy(config.strategy, **config.strategy_options)
    base = config.train_config()
    global_weights = model.get_weights()
    heldout = federation.splits.heldout
    rng = np.random.default_rng(config.seed)
    for round_number in range(1, config.rounds + 1):
        start = time.perf_counter()
        cohort = select(rng, len(federation.clients), config.clients_per_round)
        lr = config.lr_at((round_number - 1) / config.rounds)
        train = base.override({"lr": lr, **strategy.configure(round_number)})
        aggregator = strategy.aggregator(global_weights)
        train_loss = 0.0
        for index in cohort:
            update, loss = train_client(
                model, global_weights, federation.clients[index], train, config.seed, round_number, index
            )
            aggregator.add(update)
            train_loss += loss * update.num_examples
        global_weights = strategy.step(global_weights, aggregator.result())
        model.set_weights(global_weights)
        result = evaluate(model, heldout.x, heldout.y)
        yield {
            "round": round_number,
            "clients": len(cohort),
            "examples": aggregator.total_examples,
            "train_loss": train_loss / aggregator.total_examples,
            "loss": result.loss,
            "accuracy": result.accuracy,
            "duration_s": time.perf_counter() - start,
        }


def train_client(
    model: Model,
    global_weights: Weights,
    client: data.Dataset,
    train: TrainConfig,
    seed: int,
    round_number: int,
    index: int,
) -> tuple[Update, float]:
    model.set_weights(global_weights)
    result = fit(model, client.x, client.y, train, client_rng(seed, round_number, index))
    delta = [w - g for w, g in zip(model.get_weights(), global_weights, strict=True)]
    return Update(delta, result.num_examples, client_id=f"client-{index}"), result.loss


def run_centralized(
    config: SimulationConfig, federation: Federation, on_epoch: Callable[[int], None] | None = None
) -> dict:
    """The upper bound: the same model trained on the pooled training data for the same budget.

    Federated clients together see every training sample ``rounds × epochs`` times (with full
    participation), so the pooled model gets that many epochs.
    """
    model = Model(federation.spec, seed=config.seed)
    train = config.train_config()
    pooled = federation.splits.train
    epochs = config.rounds * train.epochs
    rng = np.random.default_rng([config.seed, 0xCE])
    for epoch in range(epochs):
        lr = config.lr_at(epoch // train.epochs / config.rounds)  # the rate its round would use
        fit(model, pooled.x, pooled.y, train.override({"epochs": 1, "lr": lr}), rng)
        if on_epoch:
            on_epoch(epoch + 1)
    result = evaluate(model, federation.splits.heldout.x, federation.splits.heldout.y)
    return {"epochs": epochs, "loss": result.loss, "accuracy": result.accuracy}
