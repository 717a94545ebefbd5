"""``--dropout`` over real processes and Ray actors: agents really vanish mid-round, and secure
rounds still unmask.

The fast tests check the pieces (the vanishing transport, the draw, the config); the slow one
runs a gRPC federation and a Ray one where, with seed 2, clients vanish at every one of the four
stages.
"""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from fedge.server.store import Store
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.simulation import Federation, SimulationConfig, run, vanish
from fedge.simulation.config import BACKENDS
from fedge.simulation.inprocess import SECURE_STAGES, Dropouts
from fedge.simulation.loopback import vanishing_plan
from fedge.simulation.report import read_metrics

# 10 clients of ~38 windows, a model that learns synthetic-imu in 3 rounds (0.76 held-out in-process)
SMALL = {"dataset": "synthetic-imu", "model": "mlp", "partition": "iid", "clients": 10, "rounds": 3,
         "local_epochs": 3, "lr": 0.1, "secagg": True, "dropout": 0.3, "publish": "never", "seed": 2}  # fmt: skip


class Exited(Exception):
    pass


class FakeTransport:
    """Answers check-ins with one assignment and records the stage requests that got through."""

    def __init__(self, number: int, round_id: int) -> None:
        self.assignment = pb.Assignment(task_id="t", round=number, round_id=round_id, secagg=pb.SecAggPlan())
        self.sent: list[str] = []

    def check_in(self, request):
        return pb.CheckInResponse(assignment=self.assignment)

    def advertise_keys(self, request):
        self.sent.append("advertise_keys")
        return pb.AdvertiseKeysResponse()

    def share_keys(self, request):
        self.sent.append("share_keys")
        return pb.ShareKeysResponse()

    def download_model(self, request, size):
        self.sent.append("download_model")
        return b""

    def unmask(self, request):
        self.sent.append("unmask")
        return pb.UnmaskResponse()


def stage_requests(transport, round_id: int) -> None:
    """What an agent sends in a secure round, in order."""
    transport.check_in(pb.CheckInRequest())
    transport.advertise_keys(pb.AdvertiseKeysRequest(round_id=round_id))
    transport.share_keys(pb.ShareKeysRequest(round_id=round_id))
    transport.download_model(pb.DownloadModelRequest(round_id=round_id), 0)
    transport.unmask(pb.UnmaskRequest(round_id=round_id))


def exits(code: int) -> None:
    raise Exited(code)


@pytest.mark.parametrize("stage", SECURE_STAGES)
def test_a_client_vanishes_right_before_the_planned_stage_of_the_planned_round(tmp_path, stage):
    inner, marker = FakeTransport(number=2, round_id=7), tmp_path / "marker.json"
    transport = vanish.VanishingTransport(inner, vanish.Orders({2: stage}, str(marker)), exit=exits)

    with pytest.raises(Exited, match=str(vanish.EXIT_CODE)):
        stage_requests(transport, round_id=7)

    rpcs = ["advertise_keys", "share_keys", "download_model", "unmask"]
    assert inner.sent == rpcs[: SECURE_STAGES.index(stage)]  # nothing from the stage on got out
    event = json.loads(marker.read_text())
    assert (event["round"], event["round_id"], event["stage"], event["rpc"]) == (2, 7, stage, vanish.RPC[stage])


def test_other_rounds_go_through_and_a_replacement_sits_out_the_round_it_replaces(tmp_path):
    inner = FakeTransport(number=3, round_id=9)
    transport = vanish.VanishingTransport(inner, vanish.Orders({2: "share"}, str(tmp_path / "m")), exit=exits)
    stage_requests(transport, round_id=9)  # round 3: not planned
    assert len(inner.sent) == 4 and not (tmp_path / "m").exists()

    replacement = vanish.VanishingTransport(FakeTransport(number=3, round_id=9), vanish.Orders(sit_out=9))
    reply = replacement.check_in(pb.CheckInRequest())
    assert reply.HasField("retry") and not reply.HasField("assignment")
    replacement.inner.assignment.round_id = 10  # the next round opened
    assert replacement.check_in(pb.CheckInRequest()).assignment.round_id == 10


def test_orders_travel_in_the_environment_and_only_there(monkeypatch):
    orders = vanish.Orders({1: "advertise", 3: "unmask"}, "/tmp/marker.json", sit_out=4)
    assert vanish.Orders.from_env(orders.to_env()) == orders
    monkeypatch.delenv(vanish.ENV, raising=False)
    plain = object()
    assert vanish.wrap(plain) is plain  # a normal `fedge client` runs without the wrapper
    monkeypatch.setenv(vanish.ENV, orders.to_env())
    assert isinstance(vanish.wrap(plain), vanish.VanishingTransport)
    with pytest.raises(ValueError, match="expected stages among"):
        vanish.Orders.from_env(json.dumps({"plan": {"1": "collect"}}))


def test_the_grpc_plan_is_what_the_inprocess_backend_draws():
    config = SimulationConfig(**SMALL, backend="grpc")
    plan = vanishing_plan(config, 10)
    dropouts = Dropouts(config.dropout, np.random.default_rng([config.seed, 0xD80]))
    agents = [SimpleNamespace(secure=None) for _ in range(10)]
    for number in range(1, config.rounds + 1):
        dropouts.draw(number, agents)
        assert dropouts.plan == {i: p[number] for i, p in plan.items() if number in p}
    assert vanishing_plan(config, 10) == plan  # the seed decides
    assert vanishing_plan(SimulationConfig(**{**SMALL, "seed": 3}, backend="grpc"), 10) != plan


def test_dropout_needs_secure_aggregation_on_every_backend():
    for backend in BACKENDS:
        with pytest.raises(ValueError, match="it needs --secagg"):
            SimulationConfig(**{**SMALL, "secagg": False}, backend=backend)
        assert SimulationConfig(**SMALL, backend=backend).dropout == 0.3


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["grpc", "ray"])
def test_clients_that_vanish_at_every_stage_leave_rounds_that_still_unmask(tmp_path, backend, request):
    """grpc: agent processes exit; ray: an actor's agent drops the round where a process would exit."""
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    config = SimulationConfig(**SMALL, backend=backend)
    plan = vanishing_plan(config, 10)
    planned = {(i, n, s) for i, p in plan.items() for n, s in p.items()}
    assert {s for _, _, s in planned} == set(SECURE_STAGES)  # seed 2: all four stages

    summary = run(config, tmp_path / backend)

    workdir = tmp_path / "grpc" / "loopback" if backend == "grpc" else tmp_path / "ray"
    events = [json.loads(line) for line in (workdir / "vanished.jsonl").read_text().splitlines()]
    assert {(e["client"], e["round"], e["stage"]) for e in events} == planned and len(events) == len(planned)
    for e in events if backend == "grpc" else ():  # the process itself said so in its log, then exited
        log = (workdir / f"client-{e['client']:03d}.log").read_text()
        assert f"vanishing before {e['rpc']} in round {e['round']}" in log
    store = Store(workdir / "coordinator")
    try:
        rounds = store.query("SELECT round_id, number, phase FROM rounds ORDER BY round_id")
        participants = store.query("SELECT round_id, status FROM participants")
    finally:
        store.close()
    assert [(r["number"], r["phase"]) for r in rounds] == [(1, "committed"), (2, "committed"), (3, "committed")]
    cohort = Counter(p["round_id"] for p in participants)
    reported = Counter(p["round_id"] for p in participants if p["status"] == "reported")
    # replacements kept the cohort full; whoever vanished before its masked input went out is missing
    lost = Counter(n for _, n, s in planned if s != "unmask")
    assert [cohort[r["round_id"]] for r in rounds] == [10, 10, 10]
    assert [reported[r["round_id"]] for r in rounds] == [10 - lost[n] for n in (1, 2, 3)]
    records = read_metrics(tmp_path / backend / "metrics.jsonl")
    assert [r["clients"] for r in records] == [10 - lost[n] for n in (1, 2, 3)]
    assert min(r["clients"] for r in records) < 10
    sizes = [len(c) for c in Federation.from_config(config).clients]
    gone = {n: sum(sizes[i] for i, m, s in planned if m == n and s != "unmask") for n in (1, 2, 3)}
    assert [r["examples"] for r in records] == [sum(sizes) - gone[n] for n in (1, 2, 3)]
    # the sum unmasked from the survivors is right: a wrong mask would leave noise, not a model
    assert summary["final_accuracy"] > 0.6  # 4 classes: chance is 0.25 (0.76 on the in-process backend)
    assert records[-1]["loss"] < records[0]["loss"]
