"""A device's own privacy floor: it checks a secure plan's DP numbers and refuses, sending no key.

The device knows the quantiser (clip, max_clients), dp_clip, its noise scale, the fewest clients
the sum needs (dp_min_clients) and its own update's length d; from them alone it computes the
noise multiplier its noise gives, σ_c·√m / (C·s + 2√d), and refuses a plan that gives less than
it states or than the device requires, or whose numbers are invalid.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from fedge.client import secagg as client_secagg
from fedge.client.agent import Agent
from fedge.client.secagg import (
    NO_FLOOR,
    PlanRefused,
    PrivacyFloor,
    SecAggSession,
    refuse_unprotected,
)
from fedge.client.transport import InProcessTransport
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.shared import secagg
from fedge.shared.privacy import plan_noise
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.simulation.inprocess import TASK, SimulatedClock, play_round

TENSORS = [
    pb.TensorSpec(name="w", dtype="float32", shape=[40, 25]),
    pb.TensorSpec(name="b", dtype="float32", shape=[25]),
]
DIM = 40 * 25 + 25
N, M, Z = 16, 8, 1.0


def noisy_plan(dim: int = DIM, **change) -> pb.SecAggPlan:
    """What the coordinator sends for z = 1 over 8 of 16 clients (then ``change`` applied)."""
    noise = plan_noise(secagg_clip=0.5, max_clients=N, dp_clip=0.5, noise_multiplier=Z, min_clients=M, dim=dim)
    plan = pb.SecAggPlan(
        neighbours=4, threshold=3, clip=noise.clip, max_clients=N, dp_clip=noise.dp_clip,
        dp_noise_stddev=noise.client_stddev, dp_min_clients=M, dp_noise_multiplier=Z, format=secagg.FORMAT,
    )  # fmt: skip
    for name, value in change.items():
        setattr(plan, name, value)
    return plan


def assignment(plan: pb.SecAggPlan, trainable: tuple[str, ...] = ()) -> pb.Assignment:
    return pb.Assignment(task_id="t", round_id=7, round=3, tensors=TENSORS, secagg=plan, trainable=trainable)


@pytest.fixture
def keys_made(monkeypatch) -> list[int]:
    """Counts X25519 key pairs made: a refused plan must make (and so send) none."""
    made: list[int] = []
    generate = secagg.PrivateKey.generate

    def counting():
        made.append(1)
        return generate()

    monkeypatch.setattr(client_secagg.secagg.PrivateKey, "generate", staticmethod(counting))
    return made


# -- the floor -----------------------------------------------------------------------------------
@pytest.mark.parametrize("floor", [0.0, 0.5, Z])
def test_a_device_accepts_a_plan_at_or_above_its_floor(floor, keys_made):
    session = SecAggSession(assignment(noisy_plan()), "credential", PrivacyFloor(floor))
    assert Z <= session.noise_multiplier < Z * (1 + 1e-6)
    assert len(session.advertise_request().mask_key) == 32 and len(keys_made) == 2


@pytest.mark.parametrize("floor", [Z * 1.001, 2.0])
def test_a_device_refuses_a_plan_under_its_floor_and_makes_no_key(floor, keys_made):
    with pytest.raises(PlanRefused, match=rf"gives noise multiplier 1 over 8 clients; this device requires ≥ {floor}"):
        SecAggSession(assignment(noisy_plan()), "credential", PrivacyFloor(floor))
    assert keys_made == []


def test_a_refusal_is_a_failed_precondition_the_agent_treats_as_a_round_gone():
    with pytest.raises(PlanRefused) as refused:
        SecAggSession(assignment(noisy_plan()), "credential", PrivacyFloor(3.0))
    assert refused.value.code == "FAILED_PRECONDITION"
    assert "round 3 of task 't' refused, no keys sent" in refused.value.message


def test_a_plan_without_noise_is_refused_only_by_a_device_that_requires_some():
    plain = pb.SecAggPlan(neighbours=4, threshold=3, clip=8.0, max_clients=N, format=secagg.FORMAT)
    assert SecAggSession(assignment(plain), "credential").noise_multiplier == 0.0
    with pytest.raises(PlanRefused, match=r"adds no noise on this device; it requires a noise multiplier ≥ 0\.1"):
        SecAggSession(assignment(plain), "credential", PrivacyFloor(0.1))


def test_less_noise_than_the_plan_states_is_refused_whatever_the_floor():
    plan = noisy_plan()
    plan.dp_noise_stddev /= 2
    with pytest.raises(PlanRefused, match=r"states noise multiplier 1, but its noise gives 0\.5"):
        SecAggSession(assignment(plan), "credential")


def test_a_coordinator_stating_less_is_held_to_the_device_floor():
    plan = noisy_plan()
    plan.dp_noise_stddev /= 2
    plan.dp_noise_multiplier = 0.5
    assert SecAggSession(assignment(plan), "credential").noise_multiplier == pytest.approx(0.5)
    with pytest.raises(PlanRefused, match=r"requires ≥ 1\.0"):
        SecAggSession(assignment(plan), "credential", PrivacyFloor(1.0))


def test_the_device_counts_its_own_update_length():
    """The 2√d of the sensitivity is the device's own d: noise planned for 25 coordinates is not
    enough for 1025, and is for a device that trains only the 25 of tensor b."""
    plan = noisy_plan(dim=25)
    with pytest.raises(PlanRefused, match=r"its noise gives 0\.99"):
        SecAggSession(assignment(plan), "credential", PrivacyFloor(Z))
    assert SecAggSession(assignment(plan, trainable=("b",)), "credential", PrivacyFloor(Z)).dim == 25


def test_the_noise_counts_only_the_clients_the_sum_needs():
    plan = noisy_plan()
    plan.dp_min_clients = M // 2  # the same noise spread over 4 clients: z / √2
    plan.dp_noise_multiplier = 0
    session = SecAggSession(assignment(plan), "credential")
    assert session.noise_multiplier == pytest.approx(Z / math.sqrt(2), rel=1e-6)
    with pytest.raises(PlanRefused, match=r"requires ≥ 1\.0"):
        SecAggSession(assignment(plan), "credential", PrivacyFloor(Z))


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "1"])
def test_a_floor_must_be_a_finite_number_at_least_zero(bad):
    with pytest.raises(ValueError, match="min_noise_multiplier must be a finite number ≥ 0"):
        PrivacyFloor(bad)


def test_a_device_with_a_floor_refuses_an_assignment_without_secure_aggregation():
    plain = pb.Assignment(task_id="t", round_id=9, round=4, tensors=TENSORS)
    refuse_unprotected(plain, PrivacyFloor())  # no floor: nothing to refuse
    refuse_unprotected(assignment(noisy_plan()), PrivacyFloor(Z))  # secure: the session checks it
    with pytest.raises(PlanRefused, match=r"not securely aggregated, and this device requires .* ≥ 1\.0"):
        refuse_unprotected(plain, PrivacyFloor(Z))


# -- invalid numbers -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dp_noise_stddev": math.nan}, "dp_noise_stddev must be a finite number ≥ 0"),
        ({"dp_noise_stddev": -5.0}, "dp_noise_stddev must be a finite number ≥ 0"),
        ({"dp_noise_stddev": math.inf}, "dp_noise_stddev must be a finite number ≥ 0"),
        ({"dp_noise_stddev": 1.5}, r"dp_noise_stddev must lie in \[2.0, 2\^40\]"),
        ({"dp_noise_stddev": 2.0**41}, r"dp_noise_stddev must lie in \[2.0, 2\^40\]"),
        ({"dp_clip": math.nan}, "dp_clip must be a finite number ≥ 0"),
        ({"dp_clip": -0.5}, "dp_clip must be a finite number ≥ 0"),
        ({"dp_clip": math.inf}, "dp_clip must be a finite number ≥ 0"),
        ({"dp_clip": 0.0}, "adds noise without a dp_clip"),
        ({"dp_clip": 1e30}, "leaves no room for the noise"),
        ({"dp_noise_multiplier": math.nan}, "dp_noise_multiplier must be a finite number ≥ 0"),
        ({"dp_noise_multiplier": -1.0}, "dp_noise_multiplier must be a finite number ≥ 0"),
        ({"dp_noise_multiplier": math.inf}, "dp_noise_multiplier must be a finite number ≥ 0"),
        ({"dp_noise_multiplier": 1e6}, "states noise multiplier 1e"),
        ({"dp_min_clients": 0}, "dp_min_clients must lie in 1..max_clients=16, got 0"),
        ({"dp_min_clients": N + 1}, "dp_min_clients must lie in 1..max_clients=16, got 17"),
        ({"clip": math.nan}, "quantiser is invalid: clip must be a finite number > 0"),
        ({"clip": 0.0}, "quantiser is invalid: clip must be a finite number > 0"),
        ({"clip": -1.0}, "quantiser is invalid: clip must be a finite number > 0"),
        ({"max_clients": 0}, "quantiser is invalid: n_clients must be an int in 1..65535"),
        ({"clip": 0.5}, "leaves no room for the noise"),  # the task's range, not widened: the sum could wrap
        ({"dp_noise_stddev": 0.0}, "states noise multiplier 1.0 but adds no noise"),
    ],
)
def test_invalid_plan_numbers_are_refused_before_any_key(change, reason, keys_made):
    with pytest.raises(PlanRefused, match=reason):
        SecAggSession(assignment(noisy_plan(**change)), "credential")
    assert keys_made == []


def test_noise_on_an_update_of_another_length_is_refused():
    session = SecAggSession(assignment(noisy_plan()), "credential")
    session.index = 0
    with pytest.raises(ValueError, match="expected an update of 1025 values, as the assignment's tensors, got 25"):
        session.masked_input([np.zeros(25, np.float32)], np.random.default_rng(0))
    masked = session.masked_input([np.zeros((40, 25), np.float32), np.zeros(25, np.float32)], np.random.default_rng(0))
    assert masked.dtype == np.uint32 and masked.size == DIM


# -- the agent carries on ------------------------------------------------------------------------
class ScriptedTransport:
    """Answers check-ins from a list of assignments (then: wait), and records what the agent sends."""

    def __init__(self, assignments: list[pb.Assignment]) -> None:
        self.assignments, self.calls = list(assignments), []

    def check_in(self, request):
        self.calls.append("check_in")
        if not self.assignments:
            return pb.CheckInResponse(retry=pb.RetryAfter(retry_after_ms=1000))
        return pb.CheckInResponse(assignment=self.assignments.pop(0))

    def advertise_keys(self, request):
        if request.decline:
            assert not (request.encryption_key or request.mask_key)
            self.calls.append(f"decline: {request.decline}")
            return pb.AdvertiseKeysResponse()
        self.calls.append("advertise_keys")
        return pb.AdvertiseKeysResponse(retry_after_ms=100)

    def upload_update(self, header, parts):
        assert header.decline and not header.tensors and not b"".join(parts)
        self.calls.append(f"decline upload: {header.decline}")
        return pb.UploadUpdateResponse(status=pb.UPDATE_STATUS_DISCARDED, message="declined")


def test_the_agent_declines_a_refused_round_with_no_key_and_takes_the_next(caplog):
    low = noisy_plan()
    low.dp_noise_stddev /= 2
    low.dp_noise_multiplier = 0.5
    enough = assignment(noisy_plan())
    enough.round_id += 1  # the next round
    transport = ScriptedTransport([assignment(low), assignment(low), enough])
    agent = Agent(transport, "credential", trainer=None, seed=0, floor=PrivacyFloor(Z))
    with caplog.at_level(logging.WARNING, logger="fedge.secagg"):
        first, second = agent.attempt(), agent.attempt()  # the coordinator hands the same round again
    assert "refused, no keys sent" in first.reason and agent.secure is None
    assert "waiting for the next round" in second.reason and second.wait_s >= 1  # it sits the round out
    assert transport.calls[0] == transport.calls[2] == "check_in" and len(transport.calls) == 3
    assert transport.calls[1].startswith("decline: round 3 of task 't' refused") and "≥ 1.0" in transport.calls[1]
    warnings = [r for r in caplog.records if r.name == "fedge.secagg"]
    assert len(warnings) == 1 and "this device requires ≥ 1.0" in warnings[0].getMessage()  # once per round
    agent.attempt()  # a plan that gives enough: the round goes ahead
    assert transport.calls[-2:] == ["check_in", "advertise_keys"] and agent.secure is not None


def test_a_device_that_requires_noise_sits_out_a_round_in_the_clear():
    plain = pb.Assignment(task_id="t", round_id=9, round=4, tensors=TENSORS)
    transport = ScriptedTransport([plain, plain])
    agent = Agent(transport, "credential", trainer=None, seed=0, floor=PrivacyFloor(Z))
    refused, again = agent.attempt(), agent.attempt()
    assert "not securely aggregated" in refused.reason and "waiting for the next round" in again.reason
    assert transport.calls[::2] == ["check_in", "check_in"] and len(transport.calls) == 3  # nothing trained
    assert transport.calls[1].startswith("decline upload: round 4 of task 't' refused")  # nor uploaded


# -- end to end ----------------------------------------------------------------------------------
class FixedTrainer:
    def __call__(self, spec_json, start, plan, rng, trainable=()):
        return [np.full(w.shape, 0.1, np.float32) for w in start], 10, {}


class Recording(InProcessTransport):
    def __init__(self, coordinator, calls: list[str]) -> None:
        super().__init__(coordinator)
        self.calls = calls

    def advertise_keys(self, request):
        self.calls.append("decline" if request.decline else "advertise_keys")
        return super().advertise_keys(request)


def federation(tmp_path, floors: list[float]):
    task = TaskConfig(
        name=TASK, model="mlp", input_shape=(8,), labels=("a", "b", "c"), rounds=2, clients_per_round=4,
        min_clients=3, over_selection=1.0, secagg=True, secagg_clip=2.0, dp_clip=0.5, dp_noise=1.0,
    )  # fmt: skip
    clock = SimulatedClock()
    coordinator = Coordinator([task], tmp_path / "coordinator", clock=clock)
    calls: list[str] = []
    transport = Recording(coordinator, calls)
    tokens = coordinator.create_tokens(apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=4))
    agents = [
        Agent(transport, Agent.enroll(transport, t), FixedTrainer(), seed=i, floor=PrivacyFloor(floor))
        for i, (t, floor) in enumerate(zip(tokens.tokens, floors, strict=True))
    ]
    return coordinator, agents, clock, calls


def test_a_federation_of_devices_with_a_higher_floor_never_advertises_then_goes_on(tmp_path):
    coordinator, agents, clock, calls = federation(tmp_path, [1.5] * 4)  # more than the task's z = 1
    rounds, rng = coordinator.tasks[TASK], np.random.default_rng(0)
    try:
        play_round(coordinator, agents, rng, clock, until=lambda: rounds.live.attempt > 1)
        assert calls == ["decline"] * 4 and rounds.version == 0  # the attempt failed with no key advertised
        assert clock.skipped < rounds.task.secagg_timeout_s  # at once: no stage waited for its deadline
        for agent in agents:
            agent.floor = PrivacyFloor(1.0)
        play_round(coordinator, agents, rng, clock)
        assert rounds.version == 1 and calls.count("advertise_keys") >= 4
        assert rounds.last_metrics["epsilon"] > 0
    finally:
        coordinator.close()


def test_a_device_that_declines_does_not_hold_up_the_others(tmp_path):
    coordinator, agents, clock, calls = federation(tmp_path, [1.5, 1.0, 1.0, 1.0])
    rounds = coordinator.tasks[TASK]
    try:
        play_round(coordinator, agents, np.random.default_rng(0), clock)
        assert rounds.version == 1 and rounds.last_metrics["clients"] == 3
        assert clock.skipped < rounds.task.secagg_timeout_s  # the key exchange did not wait for the fourth
        assert "decline" in calls
        status = coordinator.store.query("SELECT status FROM participants WHERE round_id = 1")
        assert sorted(r["status"] for r in status) == ["declined", "reported", "reported", "reported"]
    finally:
        coordinator.close()


def test_a_device_that_declines_a_round_in_the_clear_does_not_hold_it_up(tmp_path):
    task = TaskConfig(
        name=TASK, model="mlp", input_shape=(8,), labels=("a", "b", "c"), rounds=1, clients_per_round=4,
        min_clients=3, over_selection=1.0, train_deadline_s=600.0,
    )  # fmt: skip
    clock = SimulatedClock()
    coordinator = Coordinator([task], tmp_path / "coordinator", clock=clock)
    tokens = coordinator.create_tokens(apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=4))
    transport = InProcessTransport(coordinator)
    floors = [PrivacyFloor(1.0), NO_FLOOR, NO_FLOOR, NO_FLOOR]  # the first requires noise: it refuses the round
    agents = [
        Agent(transport, Agent.enroll(transport, t), FixedTrainer(), seed=i, floor=floor)
        for i, (t, floor) in enumerate(zip(tokens.tokens, floors, strict=True))
    ]
    rounds = coordinator.tasks[TASK]
    try:
        play_round(coordinator, agents, np.random.default_rng(0), clock)
        assert rounds.version == 1 and rounds.last_metrics["clients"] == 3
        assert clock.skipped < task.train_deadline_s  # the round did not wait for the fourth update
        status = coordinator.store.query("SELECT status FROM participants WHERE round_id = 1")
        assert sorted(r["status"] for r in status) == ["declined", "reported", "reported", "reported"]
    finally:
        coordinator.close()


@pytest.mark.parametrize("other", [0, 1, secagg.FORMAT + 1])
def test_a_plan_in_another_byte_format_is_refused_before_any_key_is_made(keys_made, other):
    """Masks made in two formats would not cancel: the sum would be garbage, so the device sits it out."""
    with pytest.raises(PlanRefused, match=f"format {other}, this client in format {secagg.FORMAT}") as refused:
        SecAggSession(assignment(noisy_plan(format=other)), "credential")
    assert keys_made == [] and refused.value.code == "FAILED_PRECONDITION"
