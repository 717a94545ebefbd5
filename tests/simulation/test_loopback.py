"""The loopback backend: a real daemon process and agent processes give the in-process outputs."""

from __future__ import annotations

import json

import pytest

from fedge.simulation import SimulationConfig, run
from fedge.simulation.report import read_metrics

SMALL = {"dataset": "synthetic-imu", "rounds": 3, "local_epochs": 1}


@pytest.mark.slow
def test_grpc_backend_writes_what_the_inprocess_backend_writes(tmp_path):
    inprocess = run(SimulationConfig(**SMALL), tmp_path / "inprocess")
    grpc = run(SimulationConfig(**SMALL, backend="grpc"), tmp_path / "grpc")

    a, b = read_metrics(tmp_path / "inprocess" / "metrics.jsonl"), read_metrics(tmp_path / "grpc" / "metrics.jsonl")
    assert [r["round"] for r in a] == [r["round"] for r in b] == [1, 2, 3]
    assert [r["clients"] for r in b] == [4, 4, 4] and [r["examples"] for r in a] == [r["examples"] for r in b]
    assert set(a[0]) == set(b[0])
    # Same seeds, same data; only BLAS threading and arrival order differ.
    assert abs(grpc["final_accuracy"] - inprocess["final_accuracy"]) < 0.1
    assert json.loads((tmp_path / "grpc" / "summary.json").read_text())["backend"] == "grpc"
    assert (tmp_path / "grpc" / "plot.png").exists()


@pytest.mark.slow
def test_secure_aggregation_runs_over_real_processes(tmp_path):
    summary = run(SimulationConfig(**SMALL, backend="grpc", secagg=True), tmp_path)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert summary["secagg"] and [r["clients"] for r in records] == [4, 4, 4]
    assert summary["final_accuracy"] > 0.25  # 4 classes
