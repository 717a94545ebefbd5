"""Pace steering: a client with nothing to do is told when the next round is expected to open.

The coordinator runs in-process on a clock the tests move by hand, so every wait can be
checked against the round's own figures: its reports so far, the last rounds' pace, its
deadline. A reply asks the client back after a random share (RETRY_SHARE) of the estimate.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedge.client.agent import Agent
from fedge.client.transport import InProcessTransport
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.rounds import RETRY_MAX_MS, RETRY_MIN_MS, RETRY_SELECTING_MS, RETRY_SHARE
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.training import TrainConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def zero_update(spec_json, start, plan, rng, trainable=()):
    return [np.zeros_like(w) for w in start], 10, {}


def federation(tmp_path, clients: int, **options) -> tuple[Coordinator, list[Agent], Clock]:
    task = TaskConfig(**{
        "name": "t", "model": "mlp", "input_shape": (8,), "labels": ("a", "b"), "rounds": 5,
        "clients_per_round": 4, "min_clients": 1, "over_selection": 1.0, "select_timeout_s": 10.0,
        "train_deadline_s": 60.0, **options,
    })  # fmt: skip
    clock = Clock()
    coordinator = Coordinator([task], tmp_path / "coordinator", clock=clock)
    transport = InProcessTransport(coordinator)
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=clients)
    agents = [
        Agent(transport, Agent.enroll(transport, token), zero_update, seed=i)
        for i, token in enumerate(coordinator.create_tokens(request).tokens)
    ]
    return coordinator, agents, clock


def retry(agent: Agent) -> pb.RetryAfter:
    response = agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    assert response.HasField("retry"), response
    return response.retry


def jittered(ms: float) -> tuple[float, float]:
    """The range a wait of ``ms`` is answered in: early, never late."""
    return ms * RETRY_SHARE[0] - 1, ms * RETRY_SHARE[1]


def test_a_reported_client_comes_back_when_the_rest_are_expected_to_have_reported(tmp_path):
    _, agents, clock = federation(tmp_path, clients=4)
    for agent in agents:  # the cohort is complete
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    for agent in agents[:3]:  # one report every 2 s
        clock.now += 2.0
        assert agent.step().trained_round == 1

    reply = retry(agents[0])
    assert reply.reason == "already reported in this round" and not reply.finished
    low, high = jittered(2000)  # one report to go
    assert low <= reply.retry_after_ms <= high


def test_the_first_reporter_of_a_round_is_paced_by_the_last_rounds(tmp_path):
    coordinator, agents, clock = federation(tmp_path, clients=4, select_timeout_s=60.0)
    for agent in agents:  # round 1: a report every 2 s
        clock.now += 2.0
        agent.step()
    assert coordinator.tasks["t"].version == 1
    clock.now += 200.0  # round 2 starts late (say, its clients were away): that is not its pace
    for agent in agents:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    agents[0].step()

    low, high = jittered(3 * 2000)  # three reports to go, at one every 2 s
    assert low <= retry(agents[0]).retry_after_ms <= high


def test_while_the_cohort_forms_a_reported_client_is_asked_back_within_a_second(tmp_path):
    _, agents, clock = federation(tmp_path, clients=4, select_timeout_s=60.0)
    for agent in agents[:2]:  # they join and report 10 s apart: the pace of joining, not of the round
        clock.now += 10.0
        agent.step()

    low, high = jittered(RETRY_SELECTING_MS)
    assert low <= retry(agents[0]).retry_after_ms <= high


def test_while_the_cohort_forms_the_last_rounds_pace_still_counts(tmp_path):
    coordinator, agents, clock = federation(tmp_path, clients=4, select_timeout_s=60.0)
    for agent in agents:  # round 1: a report every 0.1 s
        clock.now += 0.1
        agent.step()
    assert coordinator.tasks["t"].version == 1
    for agent in agents[:2]:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    agents[0].step()  # round 2: two members so far, one report

    low, high = jittered(3 * 100)  # three reports to go, at the last round's pace
    assert low <= retry(agents[0]).retry_after_ms <= high


def test_a_client_that_finds_the_round_full_waits_for_the_next_one(tmp_path):
    coordinator, agents, clock = federation(tmp_path, clients=5)
    for agent in agents[:4]:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    coordinator.tick()  # the cohort is full: selection closes
    for agent in agents[:3]:
        clock.now += 0.5
        agent.step()

    reply = retry(agents[4])
    assert reply.reason == "round full"
    low, high = jittered(500)  # the last member's report, at one every 0.5 s
    assert low <= reply.retry_after_ms <= high


def test_a_stalled_round_asks_for_no_return_after_its_deadline(tmp_path):
    coordinator, agents, clock = federation(tmp_path, clients=4, select_timeout_s=60.0, train_deadline_s=5.0)
    for agent in agents[:2]:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    for agent in agents[2:]:
        clock.now += 10.0  # 10 s a report: the last two would take 20 s more
        agent.step()
    assert coordinator.tasks["t"].live.phase == "train"  # the cohort is in: the deadline counts from here

    low, high = jittered(5000)
    assert low <= retry(agents[2]).retry_after_ms <= high


def test_waits_stay_between_the_floor_and_the_ceiling(tmp_path):
    coordinator, agents, clock = federation(tmp_path, clients=4, train_deadline_s=3600.0)
    for agent in agents:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    coordinator.tick()  # the cohort is complete: selection closes
    agents[0].step()
    agents[1].step()  # two reports at the same instant: the rest look imminent
    assert retry(agents[0]).retry_after_ms == RETRY_MIN_MS
    clock.now += 3000.0
    agents[2].step()  # then 50 minutes for the third: the fourth looks 25 minutes away

    low, high = jittered(RETRY_MAX_MS)
    assert low <= retry(agents[0]).retry_after_ms <= high


def test_a_check_in_writes_nothing_to_the_store(tmp_path):
    coordinator, agents, _ = federation(tmp_path, clients=5)
    for agent in agents[:4]:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    before = coordinator.store._db.total_changes
    for _ in range(20):
        for agent in agents:
            agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    assert coordinator.store._db.total_changes == before


@pytest.mark.parametrize("reports", [1, 3])
def test_every_update_of_a_committed_round_is_in_its_commit(tmp_path, reports):
    coordinator, agents, clock = federation(tmp_path, clients=4, min_clients=1, train_deadline_s=5.0)
    for agent in agents:
        agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    for agent in agents[:reports]:
        agent.step()
    clock.now += 6.0
    coordinator.tick()  # the deadline: the round commits with the reports it has

    rows = coordinator.store.query("SELECT status, COUNT(*) AS n, SUM(num_examples) AS examples FROM participants"
                                   " GROUP BY status ORDER BY status")  # fmt: skip
    by_status = {r["status"]: (r["n"], r["examples"]) for r in rows}
    assert by_status["reported"] == (reports, 10 * reports)
    assert by_status.get("assigned", (0, None))[0] == 4 - reports


@pytest.mark.parametrize(("adjust", "steps", "holdout"), [(False, 0, 0.0), (True, 7, 0.25)])
def test_the_task_training_options_reach_the_device_trainer(tmp_path, adjust, steps, holdout):
    training = TrainConfig(
        epochs=2, batch_size=4, lr=0.25, momentum=0.5, proximal_mu=0.125, logit_adjustment=adjust, steps=steps,
        holdout=holdout,
    )  # fmt: skip
    _, agents, _ = federation(tmp_path, 1, training=training)
    seen: list[TrainConfig] = []

    def trainer(spec_json, start, plan, rng, trainable=()):
        seen.append(plan)
        return zero_update(spec_json, start, plan, rng)

    agents[0].trainer = trainer
    agents[0].attempt()
    # every field crossed the wire (the plan) as the task set it: round 1's lr is not lowered yet,
    # and the values are ones float32 holds exactly
    assert seen == [training]
