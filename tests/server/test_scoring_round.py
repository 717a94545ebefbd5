"""A task whose devices keep samples aside ends with a scoring round: its last version is scored too.

Round N's devices score version N − 1, the model they received; without one more round the last
version would never be scored, so never published by the devices' scores. The scoring round trains
nothing, is never secure (no update leaves a device), commits nothing and completes the task.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedge.client.agent import Agent, LocalTrainer
from fedge.client.transport import InProcessTransport, TransportError
from fedge.server.coordinator import Coordinator
from fedge.server.status import status
from fedge.shared import registry
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.shared.training import TrainConfig
from fedge.simulation.inprocess import SimulatedClock, play_round
from tests.server.conftest import small_task

ROUNDS = 2


def scoring_task(**overrides):
    options = {
        "rounds": ROUNDS, "clients_per_round": 3, "secagg": True, "publish": "best",
        "publish_metric": "eval_accuracy", "publish_int8": False,
        "training": TrainConfig(epochs=1, batch_size=4, holdout=0.25),
    }  # fmt: skip
    return small_task(**{**options, **overrides})


def agents_for(coordinator: Coordinator, trainers: list) -> list[Agent]:
    transport = InProcessTransport(coordinator)
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=len(trainers))
    tokens = coordinator.create_tokens(request).tokens
    return [
        Agent(transport, Agent.enroll(transport, t), trainer, seed=i)
        for i, (t, trainer) in enumerate(zip(tokens, trainers, strict=True))
    ]


def local_trainer(seed: int) -> LocalTrainer:
    rng = np.random.default_rng(seed)
    return LocalTrainer(rng.normal(size=(16, 8, 2)).astype(np.float32), rng.integers(0, 3, 16))


def play_versions(coordinator: Coordinator, agents: list[Agent]) -> None:
    rng, clock = np.random.default_rng(0), SimulatedClock()
    task = coordinator.tasks["t"]
    while task.version < ROUNDS:
        play_round(coordinator, agents, rng, clock, task_id="t")


def check_in(agent: Agent) -> pb.Assignment:
    response = agent.transport.check_in(pb.CheckInRequest(credential=agent.credential))
    assert response.HasField("assignment"), response
    return response.assignment


def test_the_last_version_is_scored_by_the_devices_in_a_round_that_trains_nothing(tmp_path):
    coordinator = Coordinator([scoring_task()], tmp_path)
    try:
        agents = agents_for(coordinator, [local_trainer(i) for i in range(3)])
        play_versions(coordinator, agents)
        rounds = coordinator.tasks["t"]
        assert not rounds.completed and rounds.live is not None and rounds.live.number == ROUNDS + 1

        assignment = check_in(agents[0])
        assert assignment.plan.score_only and assignment.model_version == ROUNDS
        assert not assignment.HasField("secagg")  # nothing to mask: the round is never secure
        outcomes = [agent.step() for agent in agents]  # each scores and uploads its figures, no tensors
        assert all(o.trained_round == ROUNDS + 1 and set(o.metrics) == {"eval_loss", "eval_accuracy"} for o in outcomes)

        assert rounds.completed and rounds.live is None and rounds.version == ROUNDS
        row = coordinator.store.query("SELECT phase, metrics_json FROM rounds WHERE number = ?", (ROUNDS + 1,))[0]
        metrics = json.loads(row["metrics_json"])
        assert row["phase"] == "scored" and metrics["version"] == ROUNDS and metrics["examples"] == 3 * 4
        expected = np.mean([o.metrics["eval_accuracy"] for o in outcomes])  # 4 held-out samples each
        assert metrics["eval_accuracy"] == pytest.approx(expected)
        assert coordinator.store.task_version("t") == ROUNDS and coordinator.store.task_completed("t")
        task = status(coordinator.store)["tasks"][0]
        assert task["status"] == "completed" and task["rounds_committed"] == ROUNDS
        assert task["rounds"][0]["phase"] == "scored" and task["rounds"][0]["committed_version"] is None
    finally:
        coordinator.close()


def test_the_scoring_round_refuses_an_update_with_tensors(tmp_path):
    coordinator = Coordinator([scoring_task()], tmp_path)
    try:
        agents = agents_for(coordinator, [local_trainer(i) for i in range(3)])
        play_versions(coordinator, agents)
        assignment = check_in(agents[0])
        header = pb.UpdateHeader(
            credential=agents[0].credential, task_id="t", round_id=assignment.round_id, num_examples=4,
            tensors=assignment.tensors[:1], metrics={"eval_accuracy": 1.0},
        )  # fmt: skip
        with pytest.raises(TransportError, match="a scoring round takes the devices' scores only: expected no tensors"):
            agents[0].transport.upload_update(header, [bytes(4 * int(np.prod(assignment.tensors[0].shape)))])
        assert agents[0].step().trained_round == ROUNDS + 1  # the same device then reports its scores
    finally:
        coordinator.close()


def test_a_device_with_nothing_to_score_on_declines_the_scoring_round(tmp_path):
    def trains_only(spec_json, start, plan, rng, trainable=()):  # a trainer that cannot score
        return [np.zeros_like(w) for w in start], 10, {}

    coordinator = Coordinator([scoring_task(secagg=False)], tmp_path)
    try:
        agents = agents_for(coordinator, [local_trainer(0), local_trainer(1), trains_only])
        play_versions(coordinator, agents)
        check_in(agents[2])
        outcome = agents[2].step()
        assert outcome.trained_round is None and "no held-out samples" in outcome.reason
        assert list(coordinator.tasks["t"].live.cohort.values()) == ["dropped"]
        for agent in agents[:2]:
            agent.step()
        assert coordinator.tasks["t"].completed  # the round did not wait for the declining device
    finally:
        coordinator.close()


def test_a_restart_before_the_scores_came_runs_the_scoring_round_again_and_after_them_none(tmp_path):
    task = scoring_task(secagg=False)
    coordinator = Coordinator([task], tmp_path)
    try:
        agents = agents_for(coordinator, [local_trainer(i) for i in range(3)])
        play_versions(coordinator, agents)
        check_in(agents[0])  # the scoring round is under way ...
    finally:
        coordinator.close()  # ... when the coordinator stops

    restarted = Coordinator([task], tmp_path)
    try:
        rounds = restarted.tasks["t"]
        assert not rounds.completed and rounds.live is not None and rounds.live.number == ROUNDS + 1
        assert rounds.live.attempt == 2
        for agent in agents:
            agent.transport = InProcessTransport(restarted)
            agent.step()
        assert rounds.completed
    finally:
        restarted.close()

    again = Coordinator([task], tmp_path)
    try:
        assert again.tasks["t"].completed and again.tasks["t"].live is None
    finally:
        again.close()


@pytest.mark.parametrize("holdout", [0.0, 0.25])
def test_only_a_task_whose_devices_keep_samples_aside_has_a_scoring_round(tmp_path, holdout):
    training = TrainConfig(epochs=1, batch_size=4, holdout=holdout)
    task = scoring_task(publish="every", publish_metric="accuracy", secagg=False, training=training)
    coordinator = Coordinator([task], tmp_path)
    try:
        agents = agents_for(coordinator, [local_trainer(i) for i in range(3)])
        play_versions(coordinator, agents)
        rounds = coordinator.tasks["t"]
        if holdout:  # published by its own metrics, yet its last version is scored by the devices too
            assert not rounds.completed
            play_round(coordinator, agents, np.random.default_rng(0), SimulatedClock(), task_id="t")
            assert {"eval_accuracy", "eval_loss"} <= set(coordinator.store.scores("t"))
        assert rounds.completed
        assert coordinator.store.query("SELECT MAX(number) AS n FROM rounds")[0]["n"] == ROUNDS + (holdout > 0)
    finally:
        coordinator.close()


def test_the_scores_of_the_last_version_publish_it_when_they_beat_the_published_ones(tmp_path):
    coordinator = Coordinator([scoring_task(secagg=False)], tmp_path)
    try:
        agents = agents_for(coordinator, [local_trainer(i) for i in range(3)])
        play_versions(coordinator, agents)
        root = tmp_path / "registry"
        coordinator.publishing.submit(lambda: None).result()  # what the commits sent is published
        before = registry.published_versions(root, "t")
        assert ROUNDS not in before  # no device has scored it yet
        rounds = coordinator.tasks["t"]
        rounds.on_scored(ROUNDS, {"eval_accuracy": 2.0, "eval_loss": 0.0})  # better than any real score
        coordinator.publishing.submit(lambda: None).result()
        assert registry.published_versions(root, "t") == [*before, ROUNDS]
    finally:
        coordinator.close()


class FixedScores:
    """Trains nothing; its devices score every model 0.5 in training rounds, and 0.9 when only scoring."""

    def __call__(self, spec_json, start, plan, rng, trainable=()):
        return [np.zeros_like(w) for w in start], 10, {"eval_accuracy": 0.5, "eval_loss": 0.5}

    def score(self, spec_json, weights, holdout):
        return 4, {"eval_accuracy": 0.9, "eval_loss": 0.1}


def test_scores_that_came_before_a_crash_still_publish_the_last_version_at_the_next_start(tmp_path):
    task = scoring_task(secagg=False)
    coordinator = Coordinator([task], tmp_path)
    try:
        agents = agents_for(coordinator, [FixedScores() for _ in range(3)])
        play_versions(coordinator, agents)
        coordinator.tasks["t"].on_scored = None  # the process dies before it publishes what the scores made due
        for agent in agents:
            agent.step()
        assert coordinator.tasks["t"].completed and coordinator.store.scores("t")["eval_accuracy"] == 0.9
    finally:
        coordinator.close()
    root, key = tmp_path / "registry", coordinator.signing_key.public_key()
    assert registry.published_versions(root, "t") == [1]  # round 2's devices scored version 1: 0.5

    Coordinator([task], tmp_path).close()  # a restart; closed after its publishing thread is done
    assert registry.published_versions(root, "t") == [1, ROUNDS]
    manifest, _ = registry.read_published(root / "t" / str(ROUNDS), key)
    assert manifest.metrics["eval_accuracy"] == 0.9
