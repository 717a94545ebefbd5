"""The Ray backend: the coordinator and the clients as Ray actors, on a real local Ray instance."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time

import pytest

from fedge.server.store import Store
from fedge.simulation import SimulationConfig, run
from fedge.simulation.cluster import ClientHost, Member, actors_for, coordinator_actor
from fedge.simulation.inprocess import Federation
from fedge.simulation.report import read_metrics
from tests import processes

SMALL = {"dataset": "synthetic-imu", "rounds": 3, "local_epochs": 1}


def query(data_dir, sql: str) -> list:
    store = Store(data_dir)
    try:
        return store.query(sql)
    finally:
        store.close()


@pytest.mark.slow
def test_a_stopped_ray_run_resumes_with_the_same_clients(tmp_path, ray_cluster):
    config = SimulationConfig(**{**SMALL, "rounds": 4}, backend="ray", secagg=True)

    class Stopped(Exception):
        pass

    def stop_after_two(record):
        if record["round"] == 2:
            raise Stopped

    with pytest.raises(Stopped):
        run(config, tmp_path, on_round=stop_after_two)
    assert [r["round"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]

    summary = run(config, tmp_path, resume=True)

    assert [r["version"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    versions = query(tmp_path / "coordinator", "SELECT version FROM versions WHERE version > 0 ORDER BY version")
    assert [r["version"] for r in versions] == [1, 2, 3, 4]  # each round committed once
    assert query(tmp_path / "coordinator", "SELECT COUNT(*) AS n FROM clients")[0]["n"] == 4  # none enrolled again
    assert summary["final_accuracy"] > 0.25  # 4 classes: the unmasked sums are models, not noise


@pytest.mark.slow
def test_a_refused_client_stops_the_run_with_the_coordinators_reason(tmp_path, ray_cluster):
    config = SimulationConfig(**SMALL, backend="ray")
    federation = Federation.from_config(config)
    coordinator = coordinator_actor(ray_cluster, config, federation, tmp_path / "coordinator", False, 1)
    try:
        samples = federation.clients[0]
        stranger = Member(0, "not-a-credential", samples.x, samples.y, [0])
        host = ray_cluster.remote(ClientHost).remote(coordinator, [stranger], {})
        with pytest.raises(RuntimeError, match="client 0: the coordinator refused this client"):
            ray_cluster.get(host.play.remote())
    finally:
        ray_cluster.get(coordinator.close.remote())
        ray_cluster.kill(coordinator)


def test_the_ray_backend_says_how_to_install_ray(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r"pip install 'fedge\[ray\]'"):
        SimulationConfig(**SMALL, backend="ray")


def test_a_ray_instance_of_the_runs_own_listens_on_loopback_only(ray_cluster):
    """Ray's default is this machine's network address, reachable from the network."""
    node = ray_cluster._private.worker.global_worker.node
    assert node.node_ip_address == "127.0.0.1"
    assert node.gcs_address.startswith("127.0.0.1:")


@pytest.mark.slow
def test_the_first_cohort_is_a_random_draw_not_the_lowest_numbers(tmp_path, ray_cluster):
    """Actor a holds the clients i with i mod A = a; in the order of their numbers, each actor's
    first check-ins would be its lowest numbers, round after round of training a prefix of them."""
    config = SimulationConfig(
        dataset="synthetic-imu", partition="iid", clients=20, clients_per_round=5, rounds=1, local_epochs=1,
        backend="ray", publish="never",
    )  # fmt: skip
    run(config, tmp_path)
    rows = query(tmp_path / "coordinator", "SELECT name FROM participants JOIN clients USING (client_id)")
    cohort = sorted(int(r["name"].removeprefix("client-")) for r in rows)
    actors = actors_for(ray_cluster, 20)
    by_actor = [[i for i in cohort if i % actors == a] for a in range(actors)]
    lowest = [list(range(a, 20, actors))[: len(mine)] for a, mine in enumerate(by_actor)]
    assert len(cohort) == 5 and by_actor != lowest, cohort


def ray_processes() -> set[int]:
    """Live processes of any Ray instance on this machine: its raylet, GCS, agents and workers."""
    ray = (b"raylet", b"gcs_server")
    return {p.pid for p in processes.running() if any(n in p.command for n in ray) or p.command.startswith(b"ray::")}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_ray_run_exits_as_on_ctrl_c_and_leaves_no_ray_process(tmp_path, sig):
    """Ray's own SIGTERM handler would end the runner with status 1, amid its cleanup."""
    before, out = ray_processes(), tmp_path / "run"
    command = ["simulate", "--backend", "ray", "--dataset", "synthetic-imu", "--rounds", "500", "--publish", "never"]
    runner = subprocess.Popen(
        [sys.executable, "-m", "fedge", *command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().strip()):
            assert runner.poll() is None and time.monotonic() < deadline, runner.stderr.read().decode()
            time.sleep(0.05)
        assert ray_processes() - before  # the run's instance: its raylet, GCS and actors
        runner.send_signal(sig)
        runner.wait(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 128 + sig, runner.stderr.read().decode()[-2000:]
    deadline = time.monotonic() + 30
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_processes() - before
