"""``fedge simulate`` as a user runs it: a real process, real files, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys


def fedge(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedge", *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


def test_help_lists_the_simulate_command():
    result = fedge("--help")
    assert result.returncode == 0
    assert "simulate" in result.stdout


def test_flags_show_bare_in_help_and_every_command_takes_dash_h():
    """Typer would print `--secagg <bool>`, as if the flag took a value."""
    for command in (["simulate"], ["client"], ["models", "predict"], []):
        result = fedge(*command, "-h")
        assert result.returncode == 0 and "Usage: fedge" in result.stdout, command
        assert "<bool>" not in result.stdout, command
    assert "<int>" in fedge("simulate", "-h").stdout  # options that take a value still say what it is


def test_limit_for_a_dataset_without_one_is_refused_in_one_line(tmp_path):
    result = fedge("simulate", "--dataset", "synthetic-imu", "--limit", "10", "--out", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.replace("│", " ").split())  # one sentence, however the box wraps it
    assert "expected a dataset that takes a limit (fashion-mnist), got 'synthetic-imu'" in said


def test_simulate_help_documents_its_options():
    result = fedge("simulate", "--help")
    assert result.returncode == 0
    for option in ("--dataset", "--partition", "--clients", "--rounds", "--centralized", "--out", "--seed"):
        assert option in result.stdout


def test_simulate_writes_its_outputs_and_prints_a_summary(tmp_path):
    out = tmp_path / "run [a]"  # brackets are not console markup: the path prints whole
    result = fedge("simulate", "--dataset", "synthetic-imu", "--rounds", "2", "--centralized", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fedge simulate: synthetic-imu, har-cnn1d") and f"→ {out}" in result.stdout
    assert f"Wrote {out / 'metrics.jsonl'}" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == 2 and "centralized_accuracy" in summary
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert "federated accuracy" in result.stdout and "centralized accuracy" in result.stdout


def test_simulate_takes_local_steps_instead_of_epochs(tmp_path):
    out = tmp_path / "run"
    args = ("--dataset", "synthetic-imu", "--rounds", "2", "--local-steps", "3", "--batch-size", "8", "--centralized")
    result = fedge("simulate", *args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "2 rounds × 3 local steps" in " ".join(result.stdout.split())  # the console wraps lines
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["centralized_epochs"] < 1  # 2 rounds of 4 clients × 3 steps × 8 samples: a fraction of the data


def test_a_bad_partition_is_one_clear_line_not_a_traceback(tmp_path):
    result = fedge("simulate", "--dataset", "synthetic-imu", "--partition", "zipf", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "error:" in result.stderr and "zipf" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_strategy_option_is_named(tmp_path):
    result = fedge("simulate", "--dataset", "synthetic-imu", "-S", "server_lr", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "expected a strategy option as KEY=VALUE, got 'server_lr'" in result.stderr
