"""A small secure cohort the end-to-end client tests share: the task, the devices' data folders,
what the coordinator's store says about the rounds, and the Node client's process (tests/browser,
tests/node, tests/fault)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fedge.server.config import TaskConfig
from fedge.server.daemon import Running
from fedge.shared.training import TrainConfig

ROUNDS = 3
NODE_CLIENT = Path(__file__).resolve().parents[1] / "client" / "js" / "bin" / "fedge-node.js"

DP_NOISE = 0.01  # real noise, small enough over 3 clients that the accuracy check still tells cancelled masks


def secure_task(dp: bool = False) -> TaskConfig:
    return TaskConfig(
        name="har",
        model="mlp",
        input_shape=(50, 6),
        labels=("motion-0", "motion-1", "motion-2", "motion-3"),
        rounds=ROUNDS,
        clients_per_round=3,
        min_clients=3,
        over_selection=1.0,
        select_timeout_s=90.0,
        train_deadline_s=60.0,
        secagg=True,
        secagg_timeout_s=30.0,
        evaluate_on="synthetic-imu",  # a wrongly masked update would sum to noise: the held-out accuracy tells
        training=TrainConfig(epochs=2, batch_size=16, lr=0.05),
        dp_clip=5.0 if dp else 0.0,
        dp_noise=DP_NOISE if dp else 0.0,
    )


def data_folders(out: Path) -> list[Path]:
    """Three clients' folders of the synthetic IMU set, as `fedge data split --clients 3` writes them."""
    from fedge.shared.data import load, partition
    from fedge.shared.data.local import write_split

    splits = load("synthetic-imu")
    clients = [splits.train.subset(index) for index in partition(splits.train, "iid", 3, 0)]
    return write_split(out, clients, splits.heldout, splits.normalisation)[:3]


def committed_rounds(running: Running) -> int:
    rows = running.coordinator.store.query("SELECT version FROM tasks WHERE task_id = 'har'")
    return rows[0]["version"]


def reporters(running: Running) -> dict[int, list[str]]:
    """For each committed round, the platforms of the clients whose updates it counted."""
    running.coordinator.store.flush()
    rows = running.coordinator.store.query(
        "SELECT r.number, c.platform FROM participants p JOIN rounds r ON r.round_id = p.round_id"
        " JOIN clients c ON c.client_id = p.client_id"
        " WHERE r.task_id = 'har' AND r.phase = 'committed' AND p.status = 'reported' ORDER BY r.number"
    )
    rounds: dict[int, list[str]] = {}
    for row in rows:
        rounds.setdefault(row["number"], []).append(row["platform"])
    return rounds


def node_or_skip() -> str:
    """The node executable, once client/js's packages are installed; skips (fails under
    FEDGE_REQUIRE_DATASETS=1, as scripts/test.sh sets it) otherwise."""
    path = shutil.which("node")
    if path is None or not (NODE_CLIENT.parents[1] / "node_modules" / "@connectrpc" / "connect-node").is_dir():
        reason = "node or client/js/node_modules is missing (npm ci --prefix client/js)"
        if os.environ.get("FEDGE_REQUIRE_DATASETS") == "1":
            pytest.fail(f"FEDGE_REQUIRE_DATASETS=1 but the Node client cannot run: {reason}")
        pytest.skip(reason)
    return path


def start_node_client(node: str, *args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A `fedge-node` process with ``args`` (and ``env`` added to the environment), its output appended to ``log``."""
    with open(log, "a") as out:
        command, environment = [node, str(NODE_CLIENT), *args], {**os.environ, **(env or {})}
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment)
