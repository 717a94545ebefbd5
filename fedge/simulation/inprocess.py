"""The in-process backend: the coordinator's own round code, with agents called in turn.

Nothing here reimplements a round. A ``Coordinator`` runs the task exactly as the daemon does;
each virtual client is an ``Agent`` whose transport calls the coordinator in this process, with
the same protocol messages. Clients take turns (in a shuffled order each round, so a cohort
smaller than the population is a random draw), which makes a run reproducible from its seed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedge.client.agent import Agent, LocalTrainer
from fedge.client.transport import InProcessTransport
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.store import DATABASE, Store
from fedge.shared import data
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.training import evaluate, fit
from fedge.simulation.config import SimulationConfig

TASK = "simulation"
CLIENTS_FILE = "simulated-clients.json"  # in the coordinator's data dir: the virtual devices' credentials
# (a run that has none, started by an older fedge, enrols its clients again when resumed)
SECURE_STAGES = ("advertise", "share", "train", "unmask")  # where a --dropout client may vanish


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
        survivors = max(1, cohort - round(config.dropout * cohort))
        task = TaskConfig(
            name=TASK,
            model=config.model,
            input_shape=splits.train.sample_shape,
            labels=splits.train.labels,
            rounds=config.rounds,
            clients_per_round=cohort,
            min_clients=survivors,
            secagg=config.secagg,
            dp_clip=config.dp_clip,
            dp_noise=config.dp_noise,
            publish=config.publish,
            publish_int8=config.publish_int8,
            init_from=config.init_from,
            train_layers=tuple(config.train_layers),
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


def start_coordinator(
    task: TaskConfig,
    splits: data.Splits,
    data_dir: Path,
    clock: Callable[[], float] = time.time,
    resume: bool = False,
) -> Coordinator:
    """The run's coordinator: a fresh one (a previous run's store in ``data_dir`` is replaced) or,
    with ``resume``, the stopped run's, which carries on from its last committed round."""
    if not resume:
        shutil.rmtree(data_dir, ignore_errors=True)
    elif not (data_dir / DATABASE).exists():
        raise FileNotFoundError(f"nothing to resume in {data_dir}: no coordinator store there")
    return Coordinator([task], data_dir, splits={task.name: splits}, clock=clock)


def enroll_agents(
    coordinator: Coordinator, federation: Federation, seed: int | list[int], saved: Path | None = None
) -> list[Agent]:
    """One agent per client, enrolled now, or the same clients again when ``saved`` holds their
    credentials (a resumed run); newly enrolled credentials are written there."""
    transport, words = InProcessTransport(coordinator), _words(seed)
    return [
        Agent(transport, credential, LocalTrainer(client.x, client.y), platform="simulation", seed=[*words, index])
        for index, (credential, client) in enumerate(
            zip(enrolled(coordinator, len(federation.clients), saved), federation.clients, strict=True)
        )
    ]


def enrolled(coordinator: Any, count: int, saved: Path | None = None) -> list[str]:
    """``count`` clients' credentials: those ``saved`` (a resumed run's), or new ones, enrolled now
    and written there. ``coordinator`` is a ``Coordinator`` or anything with its methods."""
    if saved is not None and saved.exists():
        credentials = json.loads(saved.read_text(encoding="utf-8"))
        if len(credentials) != count:
            raise ValueError(f"{saved} holds {len(credentials)} clients, but this run has {count}")
        return credentials
    transport = InProcessTransport(coordinator)
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=count)
    credentials = [
        Agent.enroll(transport, token, name=f"client-{index}", platform="simulation")
        for index, token in enumerate(coordinator.create_tokens(request).tokens)
    ]
    if saved is not None:
        saved.write_text(json.dumps(credentials), encoding="utf-8")
    return credentials


def _words(seed: int | list[int]) -> list[int]:
    """A seed as a list of words, to which each agent appends its index."""
    return list(seed) if isinstance(seed, list) else [seed]


class SimulatedClock:
    """Wall time plus skipped waits: when every live client is waiting for a deadline, jump to it."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


def draw_vanishing(rng: np.random.Generator, clients: int, fraction: float) -> dict[int, str]:
    """One round's dropouts: ``round(fraction × clients)`` clients, each at a random secure stage
    (both backends draw with this, so a seed gives the same plan on either)."""
    chosen = rng.choice(clients, size=round(fraction * clients), replace=False)
    return {int(i): str(rng.choice(SECURE_STAGES)) for i in chosen}


@dataclass
class Dropouts:
    """Which clients vanish in each secure round, and before which stage (``--dropout``)."""

    fraction: float
    rng: np.random.Generator
    round_id: int = -1
    plan: dict[int, str] = field(default_factory=dict)
    redraw: bool = True  # False: keep the given plan (tests drop chosen clients at chosen stages)

    def draw(self, round_id: int, agents: list[Agent]) -> None:
        if round_id == self.round_id or not self.redraw:
            return
        for index in self.plan:
            agents[index].secure = None  # a dropped client comes back fresh for the next round
        self.round_id, self.plan = round_id, draw_vanishing(self.rng, len(agents), self.fraction)

    def gone(self, index: int, agent: Agent) -> bool:
        """Whether the agent has reached the stage it vanishes at, in this round (a session left
        over from the last round still finishes: the client vanishes from this one)."""
        stage, secure = self.plan.get(index), agent.secure
        return stage is not None and secure is not None and secure.stage == stage and self._current(secure)

    def _current(self, secure: Any) -> bool:
        return not self.redraw or secure.assignment.round_id == self.round_id


def play_round(coordinator: Coordinator, agents: list[Agent], rng: np.random.Generator, clock: SimulatedClock,
               dropouts: Dropouts | None = None, until: Callable[[], bool] | None = None,
               task_id: str = TASK) -> None:  # fmt: skip
    """Let clients take turns until the task commits its next version (or completes, or ``until()``)."""
    task = coordinator.tasks[task_id]
    t = task.task
    patience = max(t.select_timeout_s, t.train_deadline_s, t.secagg_timeout_s) + 1
    version = task.version
    until = until or (lambda: task.version != version or task.completed)
    while not until():
        before, moved = _progress(task), False
        for index in rng.permutation(len(agents)):
            if dropouts is not None and task.live is not None:
                dropouts.draw(task.live.round_id, agents)
                if dropouts.gone(int(index), agents[index]):
                    continue
            moved |= agents[index].attempt().wait_s == 0
            coordinator.tick()
        coordinator.tick()
        if not moved and _progress(task) == before:
            clock.skip(patience)  # everyone left is waiting on a deadline


def run_rounds(
    config: SimulationConfig, federation: Federation, data_dir: Path, after: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each committed round's metrics, as the coordinator recorded them (real seconds per
    round). ``after``: resume the run stopped in ``data_dir``, whose rounds up to that version
    were already reported (any committed since are yielded first, from the store)."""
    clock = SimulatedClock()
    coordinator = start_coordinator(federation.task, federation.splits, data_dir, clock, resume=after is not None)
    try:
        task = coordinator.tasks[TASK]
        yield from committed(coordinator.store, after or 0)
        # a resumed run draws afresh from where it stopped: it is not the uninterrupted run, bit for bit
        fresh = [config.seed] if after is None else [config.seed, task.version]
        agents = enroll_agents(coordinator, federation, fresh, data_dir / CLIENTS_FILE)
        rng = np.random.default_rng([*fresh, 0x5E1EC7])
        dropouts = Dropouts(config.dropout, np.random.default_rng([*fresh, 0xD80])) if config.dropout else None
        while not task.completed:
            start, skipped, version = time.perf_counter(), clock.skipped, task.version
            play_round(coordinator, agents, rng, clock, dropouts)
            if task.version != version:  # not a scoring round, which commits nothing
                yield {
                    **task.last_metrics,
                    "duration_s": time.perf_counter() - start,
                    "waited_s": clock.skipped - skipped,
                }
    finally:
        coordinator.close()


def committed(store: Store, after: int) -> Iterator[dict[str, Any]]:
    """The metrics of every version after ``after``, as the coordinator committed them."""
    rows = store.query(
        "SELECT metrics_json FROM versions WHERE task_id = ? AND version > ? ORDER BY version", (TASK, after)
    )
    for row in rows:
        yield {**json.loads(row["metrics_json"]), "waited_s": 0.0}


def _progress(task: Any) -> tuple:
    """What changes when a round moves: a pass that changes none of it is a pass of waiting."""
    live = task.live
    return (task.version, live.round_id, live.phase, live.reports) if live else (task.version,)


def run_centralized(
    config: SimulationConfig, federation: Federation, on_round: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """The upper bound: the same model trained on the pooled training data for the same budget.

    Each round the pooled model sees what the round's clients saw together, at the rate the
    round used: every sample ``epochs`` times (with full participation), or with ``steps``, as
    many batches as the cohort took (``steps`` each).
    """
    model = Model(federation.spec, seed=config.seed)
    train = config.train_config()
    pooled = federation.splits.train
    steps = train.steps * federation.task.clients_per_round
    rng = np.random.default_rng([config.seed, 0xCE])
    for index in range(config.rounds):
        lr = federation.task.lr_at(index / config.rounds)
        fit(model, pooled.x, pooled.y, train.override({"lr": lr, "steps": steps}), rng)
        if on_round:
            on_round(index + 1)
    result = evaluate(model, federation.splits.heldout.x, federation.splits.heldout.y)
    per_round = steps * train.batch_size / len(pooled.x) if steps else train.epochs
    return {"epochs": round(config.rounds * per_round, 2), "loss": result.loss, "accuracy": result.accuracy}
