"""A coordinator restarted with its task's table edited: what may change, what may not.

More rounds carry a completed task on, and the store's copy of the settings (what `fedge status`
and the dashboard read) follows. A changed model is refused in one line: the committed versions
were trained as the old one. Another strategy starts its server state afresh.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from fedge.client.agent import Agent
from fedge.client.transport import InProcessTransport
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.status import status
from fedge.shared.proto import admin_pb2 as apb
from fedge.simulation.inprocess import SimulatedClock, play_round

TASK = TaskConfig(
    name="t", model="mlp", input_shape=(8,), labels=("a", "b"), rounds=1, clients_per_round=2, min_clients=2,
    over_selection=1.0,
)  # fmt: skip


def zero_update(spec_json, start, plan, rng, trainable=()):
    return [np.zeros_like(w) for w in start], 10, {}


def completed_once(tmp_path, task: TaskConfig = TASK) -> None:
    """The task's one round, played to the end by two agents; the coordinator then stops."""
    clock = SimulatedClock()
    coordinator = Coordinator([task], tmp_path, clock=clock)
    transport = InProcessTransport(coordinator)
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=2)
    agents = [Agent(transport, Agent.enroll(transport, t), zero_update, seed=i)
              for i, t in enumerate(coordinator.create_tokens(request).tokens)]  # fmt: skip
    play_round(coordinator, agents, np.random.default_rng(0), clock, task_id="t")
    assert coordinator.tasks["t"].completed
    coordinator.close()


def shown(coordinator: Coordinator) -> tuple[str, int, int]:
    (task,) = status(coordinator.store)["tasks"]
    return task["status"], task["version"], task["rounds_total"]


def test_more_rounds_carry_a_completed_task_on_and_status_says_so(tmp_path, caplog):
    completed_once(tmp_path)
    again = Coordinator([TASK], tmp_path, clock=SimulatedClock())
    try:
        assert shown(again) == ("completed", 1, 1) and again.tasks["t"].live is None
    finally:
        again.close()
    with caplog.at_level(logging.INFO, logger="fedge.rounds"):
        more = Coordinator([replace(TASK, rounds=3)], tmp_path, clock=SimulatedClock())
    try:
        assert "task t: settings changed since the last start: rounds 1 → 3" in caplog.text
        assert shown(more) == ("running", 1, 3)
        assert more.tasks["t"].live is not None and more.tasks["t"].live.number == 2  # round 2 is open
    finally:
        more.close()


@pytest.mark.parametrize("change", [{"input_shape": (16,)}, {"labels": ("a", "b", "c")}])
def test_a_changed_model_is_refused_naming_the_task(tmp_path, change):
    completed_once(tmp_path)
    with pytest.raises(ValueError, match=r"task 't': its model .* is not the one its 1 committed version"):
        Coordinator([replace(TASK, **change)], tmp_path, clock=SimulatedClock())


@pytest.mark.parametrize(("first", "then", "steps"), [("fedadam", "fedavgm", 0), ("fedadam", "fedadam", 1)])
def test_another_strategy_starts_its_server_state_afresh(tmp_path, caplog, first, then, steps):
    """FedAdam's moments are no FedAvgM momentum: the new strategy starts its own state at the
    last version (the same strategy with another option keeps its state)."""
    completed_once(tmp_path, replace(TASK, strategy=first))
    edited = replace(TASK, strategy=then, strategy_options={"server_lr": 0.5}, rounds=2)
    with caplog.at_level(logging.INFO, logger="fedge.rounds"):
        again = Coordinator([edited], tmp_path, clock=SimulatedClock())
    try:
        assert ("starts its server state afresh from version 1" in caplog.text) == (first != then)
        assert again.tasks["t"].strategy.state()["steps"] == steps
        assert shown(again) == ("running", 1, 2)
    finally:
        again.close()
