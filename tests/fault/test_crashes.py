"""Real processes killed with SIGKILL: the coordinator carries on from its store, agents are dropouts.

Every round needs all four clients here, so a committed round's example count proves that
each client's update was counted exactly once — none lost, none doubled — across restarts.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fedge.server.config import ServerSettings, to_toml
from fedge.server.store import Store
from fedge.shared import registry
from fedge.simulation.config import SimulationConfig
from fedge.simulation.inprocess import TASK, Federation
from fedge.simulation.loopback import Daemon, free_port, start_agent, write_setup
from tests.cohort import node_or_skip, start_node_client

pytestmark = pytest.mark.slow

ROUNDS = 10


def setup(tmp_path: Path, **task_options) -> tuple[Path, list[Path], Federation]:
    config = SimulationConfig(dataset="synthetic-imu", rounds=ROUNDS, local_epochs=1)
    federation = Federation.from_config(config)
    config_path, folders = write_setup(federation, config, tmp_path)
    task = replace(
        federation.task, evaluate_on="", publish="every", publish_every=2, publish_int8=False, **task_options
    )
    config_path.write_text(
        to_toml(ServerSettings(host="127.0.0.1", port=0, http_port=0, data_dir=tmp_path / "coordinator"), [task])
    )
    return config_path, folders, federation


def start_agents(address: str, folders: list[Path], store: Store, tmp_path: Path, node: str | None = None) -> list:
    """One `fedge client` per folder; with ``node``, the first folder's device is a `fedge-node` process."""
    tokens = store.create_tokens(len(folders))
    agents = [
        start_agent(address, token, folder, tmp_path / f"agent-{i}.log", seed=i)
        for i, (token, folder) in enumerate(zip(tokens, folders, strict=True))
        if not (node and i == 0)
    ]
    if node:
        args = ("--server", address, "--token", tokens[0], "--data", str(folders[0]), "--exit-when-done")
        agents.insert(0, start_node_client(node, *args, log=tmp_path / "agent-0.log"))
    return agents


def wait_for_version(store: Store, version: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if store.query("SELECT version FROM tasks WHERE task_id = ?", (TASK,))[0]["version"] >= version:
            return
        time.sleep(0.05)
    raise AssertionError(f"version {version} was not committed within {timeout_s} s")


def test_coordinator_killed_at_random_moments_finishes_with_every_round_committed_once(tmp_path):
    config, folders, federation = setup(tmp_path)
    data_dir, port = tmp_path / "coordinator", free_port()
    daemon = Daemon.start(config, data_dir, port)
    store = Store(data_dir)
    agents = start_agents(daemon.address, folders, store, tmp_path)
    rng = random.Random(7)
    try:
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.5))
            daemon.kill()
            daemon = Daemon.start(config, data_dir, port)
        wait_for_version(store, ROUNDS)
        assert [a.wait(timeout=60) for a in agents] == [0, 0, 0, 0]  # they outlived every crash
    finally:
        daemon.stop()
        for agent in agents:
            agent.kill()

    committed = store.query("SELECT number, metrics_json FROM rounds WHERE phase = 'committed' ORDER BY number")
    assert [r["number"] for r in committed] == list(range(1, ROUNDS + 1))  # each round once, none lost
    total = sum(len(c) for c in federation.clients)
    assert all(json.loads(r["metrics_json"])["examples"] == total for r in committed)  # nothing counted twice
    restarted = store.query("SELECT COUNT(*) AS n FROM rounds WHERE reason = 'coordinator restarted'")[0]["n"]
    assert restarted >= 1
    assert len(store.load_weights(TASK, ROUNDS)) == 8  # the last version's file matches its digest
    key = registry.load(registry.key_path(data_dir)).public_key()
    published = registry.published_versions(data_dir / "registry", TASK)
    assert published == [2, 4, 6, 8, 10]  # none lost to a crash between a commit and its publishing
    assert all(registry.read_published(data_dir / "registry" / TASK / str(v), key) for v in published)


def test_an_agent_killed_mid_run_is_a_dropout_and_rounds_go_on(tmp_path):
    config, folders, _ = setup(tmp_path, min_clients=3, select_timeout_s=1.0, train_deadline_s=2.0)
    daemon = Daemon.start(config, tmp_path / "coordinator", free_port())
    store = Store(tmp_path / "coordinator")
    agents = start_agents(daemon.address, folders, store, tmp_path)
    try:
        wait_for_version(store, 2)
        agents[0].kill()
        wait_for_version(store, ROUNDS)
    finally:
        daemon.stop()
        for agent in agents:
            agent.kill()

    rounds = store.query(
        "SELECT number, (SELECT COUNT(*) FROM participants p WHERE p.round_id = r.round_id"
        " AND p.status = 'reported') AS n FROM rounds r WHERE phase = 'committed' ORDER BY number"
    )
    assert [r["number"] for r in rounds] == list(range(1, ROUNDS + 1))
    assert rounds[-1]["n"] == 3  # the survivors carried the last rounds


def secure_stage(store: Store) -> str | None:
    """The stage the open secure round has saved, if any (server/securestate.py)."""
    rows = store.query(
        "SELECT s.progress FROM secure_rounds s JOIN rounds r USING (round_id)"
        " WHERE r.phase NOT IN ('committed', 'failed')"
    )
    return json.loads(rows[0]["progress"])["stage"] if rows and rows[0]["progress"] else None


@pytest.mark.parametrize("with_node", [False, True], ids=["python", "python-and-node"])
def test_secure_rounds_resume_after_the_coordinator_is_killed_mid_round(tmp_path, with_node):
    """With ``with_node``, one of the four devices is the Node client: it rides out the same kills."""
    node = node_or_skip() if with_node else None
    config, folders, federation = setup(tmp_path, secagg=True, secagg_clip=2.0)
    data_dir, port = tmp_path / "coordinator", free_port()
    daemon = Daemon.start(config, data_dir, port)
    store = Store(data_dir)
    agents = start_agents(daemon.address, folders, store, tmp_path, node)
    kills = 0
    try:
        deadline = time.monotonic() + 120
        while kills < 3 and time.monotonic() < deadline:
            if secure_stage(store) in ("collect", "unmask"):  # keys exchanged: a round worth carrying on
                daemon.kill()
                kills += 1
                daemon = Daemon.start(config, data_dir, port)
            time.sleep(0.005)
        wait_for_version(store, ROUNDS)
        assert [a.wait(timeout=60) for a in agents] == [0, 0, 0, 0]
    finally:
        daemon.stop()
        for agent in agents:
            agent.kill()

    assert kills == 3
    resumed = daemon.log.read_text().count("resumed at stage")
    assert resumed == kills  # each killed round went on from the store, none was retried
    rounds = store.query("SELECT number, phase, metrics_json FROM rounds ORDER BY round_id")
    assert [r["phase"] for r in rounds] == ["committed"] * ROUNDS
    total = sum(len(c) for c in federation.clients)
    assert all(json.loads(r["metrics_json"])["examples"] == total for r in rounds)  # every client, once
    assert not any((data_dir / "secure").rglob("*.u32"))  # the masked sums went with their rounds
