"""The in-process backend: the coordinator's own round code, with agents called in turn.

Nothing here reimplements a round. A ``Coordinator`` runs the task exactly as the daemon does;
each virtual client is an ``Agent`` whose transport calls the coordinator in this process, with
the same protocol messages. Clients take turns (in a shuffled order each round, so a cohort
smaller than the population is a random draw), which makes a run reproducible from its seed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedge.client.agent import Agent, LocalTrainer
from fedge.client.transport import InProcessTransport
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.rounds import held_out_evaluator
from fedge.shared import data
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.training import evaluate, fit
from fedge.simulation.config import SimulationConfig

TASK = "simulation"


@dataclass(frozen=True)
class Federation:
    """What a simulation runs on: the clients' shares, the held-out split and the task."""

    splits: data.Splits
    clients: list[data.Dataset]
    task: TaskConfig

    @classmethod
    def from_config(cls, config: SimulationConfig) -> Federation:
        splits = data.load(config.dataset, **config.dataset_options)
        parts = data.partition(splits.train, config.partition, config.clients, config.seed)
        cohort = min(config.clients_per_round or len(parts), len(parts))
        task = TaskConfig(
            name=TASK,
            model=config.model,
            input_shape=splits.train.sample_shape,
            labels=splits.train.labels,
            rounds=config.rounds,
            clients_per_round=cohort,
            min_clients=cohort,
            over_selection=1.0,
            strategy=config.strategy,
            strategy_options=dict(config.strategy_options),
            seed=config.seed,
            lr_schedule=config.lr_schedule,
            training=config.train_config(),
        )
        return cls(splits, [splits.train.subset(p) for p in parts], task)

    @property
    def spec(self) -> dict[str, Any]:
        return model_spec(self.task.model, self.task.input_shape, len(self.task.labels))


def start_coordinator(federation: Federation, data_dir: Path) -> Coordinator:
    """A fresh coordinator for this run (a previous run's store in ``data_dir`` is replaced)."""
    shutil.rmtree(data_dir, ignore_errors=True)
    evaluator = held_out_evaluator(federation.splits.heldout, federation.spec)
    return Coordinator([federation.task], data_dir, evaluators={TASK: evaluator})


def enroll_agents(coordinator: Coordinator, federation: Federation, seed: int) -> list[Agent]:
    transport = InProcessTransport(coordinator)
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=len(federation.clients))
    tokens = coordinator.create_tokens(request).tokens
    agents = []
    for index, (token, client) in enumerate(zip(tokens, federation.clients, strict=True)):
        credential = Agent.enroll(transport, token, name=f"client-{index}", platform="simulation")
        agents.append(
            Agent(transport, credential, LocalTrainer(client.x, client.y), platform="simulation", seed=[seed, index])
        )
    return agents


def run_rounds(config: SimulationConfig, federation: Federation, data_dir: Path) -> Iterator[dict[str, Any]]:
    """Yield each committed round's metrics, as the coordinator recorded them."""
    coordinator = start_coordinator(federation, data_dir)
    try:
        agents = enroll_agents(coordinator, federation, config.seed)
        task = coordinator.tasks[TASK]
        rng = np.random.default_rng([config.seed, 0x5E1EC7])
        while not task.completed:
            version = task.version
            for index in rng.permutation(len(agents)):
                agents[index].step()
                coordinator.tick()
            coordinator.tick()
            if task.version > version:
                yield dict(task.last_metrics)
    finally:
        coordinator.close()


def run_centralized(
    config: SimulationConfig, federation: Federation, on_epoch: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """The upper bound: the same model trained on the pooled training data for the same budget.

    Federated clients together see every training sample ``rounds × epochs`` times (with full
    participation), so the pooled model gets that many epochs, at the rate its round would use.
    """
    model = Model(federation.spec, seed=config.seed)
    train = config.train_config()
    pooled = federation.splits.train
    epochs = config.rounds * train.epochs
    rng = np.random.default_rng([config.seed, 0xCE])
    for epoch in range(epochs):
        lr = federation.task.lr_at(epoch // train.epochs / config.rounds)
        fit(model, pooled.x, pooled.y, train.override({"epochs": 1, "lr": lr}), rng)
        if on_epoch:
            on_epoch(epoch + 1)
    result = evaluate(model, federation.splits.heldout.x, federation.splits.heldout.y)
    return {"epochs": epochs, "loss": result.loss, "accuracy": result.accuracy}
