"""``fedge simulate --resume``: a run killed with SIGKILL carries on from its last committed round."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedge.server.store import Store
from fedge.simulation import SimulationConfig, run
from fedge.simulation.config import BACKENDS
from fedge.simulation.inprocess import TASK
from fedge.simulation.loopback import stopped_setup
from fedge.simulation.report import read_metrics

RUN = ("simulate", "--dataset", "synthetic-imu", "--rounds", "24", "--local-epochs", "2", "--publish", "never")


def fedge(*args: str, **options) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fedge", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
    )


def kill_after(process: subprocess.Popen[str], metrics: Path, rounds: int, timeout_s: float = 120.0) -> None:
    """SIGKILL ``process`` once it has reported ``rounds`` rounds, while it is still running."""
    deadline = time.monotonic() + timeout_s
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= rounds):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"no {rounds} rounds reported in {timeout_s} s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def store_dir(out: Path) -> Path:
    """The run's coordinator store: the in-process backend's, or the loopback daemon's."""
    return out / "loopback" / "coordinator" if (out / "loopback").exists() else out / "coordinator"


def query(out: Path, sql: str, *args: object) -> list:
    """Rows from the run's coordinator store."""
    store = Store(store_dir(out))
    try:
        return store.query(sql, args)
    finally:
        store.close()


def versions(out: Path) -> list[int]:
    rows = query(out, "SELECT version FROM versions WHERE task_id = ? AND version > 0 ORDER BY version", TASK)
    return [r["version"] for r in rows]


def clients(out: Path) -> int:
    return query(out, "SELECT COUNT(*) AS n FROM clients")[0]["n"]


def unused_tokens(out: Path) -> int:
    return query(out, "SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NULL")[0]["n"]


@pytest.mark.parametrize(
    "options",
    [(), ("--secagg", "--dropout", "0.25"), ("--backend", "grpc"), ("--backend", "grpc", "--secagg")],
    ids=["plain", "secure", "grpc", "grpc-secure"],
)
def test_a_killed_run_resumes_from_its_last_committed_round_with_the_same_clients(tmp_path, options):
    """Killed mid-round (a secure round's sessions die with the process: that round is retried).
    On the grpc backend the daemon and the clients stop once their runner is gone; the resumed
    run starts the daemon again on its port, and the clients keep their credentials."""
    out = tmp_path / "run"
    killed = fedge(*RUN, *options, "--out", str(out))
    kill_after(killed, out / "metrics.jsonl", rounds=3)
    before = read_metrics(out / "metrics.jsonl")
    assert 3 <= len(before) < 24

    resumed = fedge(*RUN, *options, "--out", str(out), "--resume")
    try:
        stdout, stderr = resumed.communicate(timeout=300)
    finally:
        resumed.kill()  # a run that hangs is not left behind (the loopback's processes follow it)

    assert resumed.returncode == 0, stderr
    assert f"resumed after round {len(before)}" in " ".join(stdout.split())
    records = read_metrics(out / "metrics.jsonl")
    assert records[: len(before)] == before  # what was reported stays as it was
    assert [r["version"] for r in records] == list(range(1, 25)) == versions(out)  # each round once
    assert clients(out) == 4  # the same four clients: none enrolled again
    assert unused_tokens(out) == 0  # and no token was made for them
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_accuracy"] == records[-1]["accuracy"]
    assert summary["duration_s"] == pytest.approx(sum(r["duration_s"] for r in records))


def test_a_resume_reports_rounds_committed_after_the_last_line_it_wrote(tmp_path):
    """A stop between a commit and its metrics line: the store has the round, so the report gets it."""
    config = SimulationConfig(dataset="synthetic-imu", rounds=4, local_epochs=1, publish="never")
    run(config, tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "metrics.jsonl").write_text("".join(lines[:2]) + lines[2][:20])  # round 3's line cut short

    run(config, tmp_path, resume=True)

    assert [r["round"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    assert versions(tmp_path) == [1, 2, 3, 4]


def test_resume_refuses_other_settings_and_names_them(tmp_path):
    config = SimulationConfig(dataset="synthetic-imu", rounds=2, local_epochs=1, publish="never")
    run(config, tmp_path)
    with pytest.raises(ValueError, match=r"rounds 2 \(now 3\).*seed 0 \(now 5\)"):
        run(SimulationConfig(**{**config.to_dict(), "rounds": 3, "seed": 5}), tmp_path, resume=True)
    run(SimulationConfig(**{**config.to_dict(), "centralized": True}), tmp_path, resume=True)  # the bound may be added


def test_resume_needs_a_run_to_resume(tmp_path):
    config = SimulationConfig(dataset="synthetic-imu", rounds=2, local_epochs=1)
    for backend in BACKENDS:  # ray: refused before a Ray instance starts
        with pytest.raises(FileNotFoundError, match="nothing to resume"):
            run(SimulationConfig(**{**config.to_dict(), "backend": backend}), tmp_path / backend, resume=True)


def test_the_cli_refuses_resume_without_out():
    result = fedge("simulate", "--resume")
    _, stderr = result.communicate(timeout=120)
    assert result.returncode != 0
    assert "--resume needs --out" in stderr


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_resume_refuses_a_corrupt_config_with_a_clear_error(tmp_path, content):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ValueError, match="is not the JSON fedge simulate wrote"):
        run(SimulationConfig(dataset="synthetic-imu", rounds=2, local_epochs=1), tmp_path, resume=True)


def test_a_grpc_run_that_still_runs_is_not_resumed_beside_itself(tmp_path):
    """Two daemons on one port and one store would serve the same clients: refused, naming the daemon."""
    out = tmp_path / "run"
    running = fedge(*RUN, "--backend", "grpc", "--out", str(out))
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
            assert running.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(RuntimeError, match=r"still runs \(its daemon is process \d+\): stop it first"):
            stopped_setup(out / "loopback", clients=4, timeout_s=0.5)
    finally:
        running.send_signal(signal.SIGTERM)
        running.communicate(timeout=120)
    assert running.returncode == 128 + signal.SIGTERM
    toml, folders, port = stopped_setup(out / "loopback", clients=4)  # stopped now: its setup, its port
    assert toml.exists() and len(folders) == 4 and port > 0
