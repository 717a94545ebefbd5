"""The loopback backend (a real daemon process and agent processes) and the Ray backend give the
in-process outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedge.simulation import SimulationConfig, run
from fedge.simulation.report import read_metrics
from tests import processes

SMALL = {"dataset": "synthetic-imu", "rounds": 3, "local_epochs": 1}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["grpc", "ray"])
def test_a_backend_writes_what_the_inprocess_backend_writes(tmp_path, backend, request):
    """grpc: a daemon and agent processes; ray: the same coordinator and agents as Ray actors."""
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    inprocess = run(SimulationConfig(**SMALL), tmp_path / "inprocess")
    other = run(SimulationConfig(**SMALL, backend=backend), tmp_path / backend)

    a, b = read_metrics(tmp_path / "inprocess" / "metrics.jsonl"), read_metrics(tmp_path / backend / "metrics.jsonl")
    assert [r["round"] for r in a] == [r["round"] for r in b] == [1, 2, 3]
    assert [r["clients"] for r in b] == [4, 4, 4] and [r["examples"] for r in a] == [r["examples"] for r in b]
    assert set(a[0]) == set(b[0])
    # Same seeds, same data; only BLAS threading and arrival order differ.
    assert abs(other["final_accuracy"] - inprocess["final_accuracy"]) < 0.1
    assert json.loads((tmp_path / backend / "summary.json").read_text())["backend"] == backend
    assert (tmp_path / backend / "plot.png").exists()


@pytest.mark.slow
def test_secure_aggregation_runs_over_real_processes(tmp_path):
    summary = run(SimulationConfig(**SMALL, backend="grpc", secagg=True), tmp_path)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert summary["secagg"] and [r["clients"] for r in records] == [4, 4, 4]
    assert summary["final_accuracy"] > 0.25  # 4 classes


@pytest.mark.slow
def test_a_folder_of_ones_own_runs_over_real_processes_scored_on_its_held_out_share(tmp_path):
    from fedge.shared.data import load
    from fedge.shared.data.folder import load_local_data, write_local_data

    whole = load("synthetic-imu").train
    write_local_data(tmp_path / "mine", whole.x, whole.y, whole.labels, dataset="mine", normalisation={})
    config = {**SMALL, "dataset": str(tmp_path / "mine"), "clients": 3, "rounds": 2}
    inprocess = run(SimulationConfig(**config), tmp_path / "inprocess")
    summary = run(SimulationConfig(**config, backend="grpc"), tmp_path / "grpc")
    assert summary["clients"] == 3 and abs(summary["final_accuracy"] - inprocess["final_accuracy"]) < 0.1
    held = load_local_data(tmp_path / "grpc" / "loopback" / "clients" / "heldout")  # what the daemon scored on
    assert len(held) == round(0.2 * len(whole)) and held.dataset == "mine"


def processes_naming(out: Path, runner: int) -> list[int]:
    """Live processes other than the runner whose command line names ``out``: its daemon and agents."""
    mine = (runner, os.getpid())
    return [p.pid for p in processes.running() if p.pid not in mine and str(out).encode() in p.command]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_runner_stopped_or_killed_leaves_no_daemon_or_agent_running(tmp_path, sig):
    out, log = tmp_path / "run", tmp_path / "runner.log"
    command = ["simulate", "--backend", "grpc", "--dataset", "synthetic-imu", "--rounds", "500", "--publish", "never"]
    with open(log, "w") as errors:
        runner = subprocess.Popen(
            [sys.executable, "-m", "fedge", *command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=errors
        )
    try:
        deadline = time.monotonic() + 120
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().strip()):
            assert runner.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        daemon = json.loads((out / "loopback" / "coordinator" / "server.json").read_text())["pid"]
        running = processes_naming(out, runner.pid)
        assert daemon in running and len(running) >= 2  # the daemon and the agents

        runner.send_signal(sig)
        runner.wait(timeout=120)
    finally:
        runner.kill()  # no-op once it has exited; the run's processes follow it either way
    # SIGTERM, SIGHUP: the run stops them on its way out; SIGKILL: they notice the runner is gone
    assert runner.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + sig)
    deadline = time.monotonic() + 30
    while processes_naming(out, runner.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_naming(out, runner.pid) == []


def test_settings_left_in_the_shell_do_not_reach_the_runs_daemon_or_agents(monkeypatch):
    """An operator's FEDGE_HTTP_PORT or FEDGE_TLS_CA would override the run's own fedge.toml and flags."""
    from fedge.simulation.loopback import child_env

    for name, value in [("FEDGE_HTTP_PORT", "8080"), ("FEDGE_TLS_CERT", "c.pem"), ("FEDGE_TLS_CA", "ca.pem")]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FEDGE_TOKEN", "fedge-token-x")
    monkeypatch.setenv("FEDGE_FASHION_MNIST_DIR", "/data/fashion")  # where data is, not how to serve
    env = child_env({"FEDGE_SIMULATION_VANISH": "2"})
    assert not {"FEDGE_HTTP_PORT", "FEDGE_TLS_CERT", "FEDGE_TLS_CA", "FEDGE_TOKEN"} & set(env)
    assert env["FEDGE_FASHION_MNIST_DIR"] == "/data/fashion" and env["FEDGE_SIMULATION_VANISH"] == "2"
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["FEDGE_PARENT_PID"] == str(os.getpid())
