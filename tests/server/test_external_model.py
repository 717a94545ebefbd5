"""model = "external": the clients' own model, known to the coordinator by its parameters only,
trained by Flower NumPyClients through `fedge client --flower` (real processes, secure rounds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedge.client.agent import Agent, LocalTrainer
from fedge.client.transport import InProcessTransport
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.store import Store
from fedge.shared.models import read_parameters
from fedge.shared.proto import admin_pb2 as apb
from fedge.simulation.loopback import Daemon, free_port

from ..cli.test_service_commands import fedge, small_config

FLOWER_CLIENT = Path(__file__).parents[1] / "client" / "flower_client.py"


def saved(tmp_path: Path, *arrays: np.ndarray, name: str = "initial.npz") -> str:
    path = tmp_path / name
    np.savez(path, *arrays)
    return str(path)


def external(tmp_path: Path, **options) -> TaskConfig:
    weights = saved(tmp_path, np.zeros((2, 3), np.float32), np.zeros(3, np.float32))
    return TaskConfig(**{"name": "t", "model": "external", "input_shape": (2,), "labels": ("a", "b", "c"),
                         "initial_weights": weights, "min_clients": 1, **options})  # fmt: skip


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"initial_weights": ""}, "expected initial_weights to name an .npz of the parameters when model = 'external'"),
        ({"evaluate_on": "synthetic-imu"}, "expected evaluate_on '' with model = 'external'"),
        ({"publish": "best", "evaluate_on": ""}, "expected publish 'never' with model = 'external'"),
        ({"train_layers": ("dense",)}, "expected train_layers to be empty with model = 'external'"),
    ],
)
def test_an_external_task_refuses_what_the_coordinator_cannot_do_without_the_model(tmp_path, options, reason):
    with pytest.raises(ValueError, match=reason):
        external(tmp_path, **options)


def test_initial_weights_belong_to_an_external_model_and_must_be_float32_and_finite(tmp_path):
    with pytest.raises(ValueError, match="when model = 'external', and only then"):
        TaskConfig(name="t", model="mlp", input_shape=(2,), labels=("a", "b"), initial_weights=saved(tmp_path))
    for arrays, reason in [
        ((np.zeros(3),), r"expected non-empty float32 arrays, got arr_0 float64 \(3,\)"),
        ((np.full(3, np.inf, np.float32),), "NaN or infinity in arr_0"),
    ]:
        with pytest.raises(ValueError, match=reason):
            external(tmp_path, initial_weights=saved(tmp_path, *arrays, name="bad.npz"))
    (tmp_path / "not.npz").write_text("weights")
    with pytest.raises(ValueError, match=r"not\.npz: expected an \.npz of the model's parameters"):
        external(tmp_path, initial_weights=str(tmp_path / "not.npz"))


def test_the_npz_is_read_once_while_unchanged_and_again_once_it_changes(tmp_path, monkeypatch):
    path = saved(tmp_path, np.ones((2, 3), np.float32))
    loads = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    first, again = read_parameters(path)[1], read_parameters(path)[1]
    assert len(loads) == 1 and first[0] is again[0] and not first[0].flags.writeable  # shared: read-only
    np.savez(path, np.full((2, 4), 2.0, np.float32))  # another size
    assert read_parameters(path)[1][0].shape == (2, 4) and len(loads) == 2


def test_the_coordinators_first_version_is_the_npz_and_fedges_own_trainer_sits_the_task_out(tmp_path):
    coordinator = Coordinator([external(tmp_path, clients_per_round=1, select_timeout_s=0.1)], tmp_path / "d")
    try:
        transport = InProcessTransport(coordinator)
        request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=1)
        credential = Agent.enroll(transport, coordinator.create_tokens(request).tokens[0])
        native = Agent(transport, credential, LocalTrainer(np.zeros((4, 2), np.float32), np.zeros(4, np.int64)))
        outcome = native.attempt()
        assert "the task's model is external" in outcome.reason and outcome.wait_s > 0
        coordinator.store.flush()  # participants are written with the round's next transition
        declined = coordinator.store.query("SELECT status FROM participants")
        assert [row["status"] for row in declined] == ["declined"]
        first = coordinator.store.load_weights("t", 0)
        assert [w.shape for w in first] == [(2, 3), (3,)]
    finally:
        coordinator.close()


@pytest.mark.slow
def test_flower_clients_train_the_external_model_in_secure_rounds(tmp_path):
    config = small_config(tmp_path, rounds=4)
    np.savez(tmp_path / "initial.npz", np.zeros((2, 3), np.float32), np.zeros(3, np.float32))
    text = config.read_text()
    for old, new in [
        ('model = "har-cnn1d"', 'model = "external"'),
        ('initial_weights = ""', 'initial_weights = "initial.npz"'),
        ('evaluate_on = "synthetic-imu"', 'evaluate_on = ""'),
        ('publish = "best"', 'publish = "never"'),
        ("clients_per_round = 2", "clients_per_round = 3"),
        ("min_clients = 2", "min_clients = 3"),
        ("secagg = false", "secagg = true"),
        ("lr = 0.05", "lr = 0.5"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text.replace("over_selection = 1.3", "over_selection = 1.0"))
    daemon, agents = Daemon.start(config, tmp_path / "data", free_port()), []
    try:
        tokens = fedge("token", "create", "--count", "3", "--data-dir", str(tmp_path / "data")).stdout.split()
        for index, token in enumerate(tokens):
            (tmp_path / str(index)).mkdir()  # each device's own folder: its credential lands there
            command = [sys.executable, "-m", "fedge", "client", "--server", daemon.address, "--token", token]
            command += ["--flower", f"{FLOWER_CLIENT}:make_client", "--exit-when-done"]
            env = {**os.environ, "FLOWER_CLIENT": str(index)}
            with open(tmp_path / f"agent-{index}.log", "w") as log:
                agents.append(subprocess.Popen(command, stdout=log, stderr=log, cwd=tmp_path / str(index), env=env))
        deadline = time.monotonic() + 120
        while any(agent.poll() is None for agent in agents):
            assert time.monotonic() < deadline, (tmp_path / "agent-0.log").read_text()
            time.sleep(0.5)
        assert [agent.returncode for agent in agents] == [0, 0, 0], (tmp_path / "agent-0.log").read_text()
    finally:
        for agent in agents:
            agent.kill()
        daemon.stop()
    store = Store(tmp_path / "data")
    try:
        rounds = store.query("SELECT metrics_json FROM rounds WHERE phase = 'committed' ORDER BY number")
        losses = [json.loads(row["metrics_json"])["train_loss"] for row in rounds]
        final = store.load_weights("har", store.task_version("har"))
    finally:
        store.close()
    assert len(losses) == 4 and losses[-1] < losses[0]  # the clients' own loss, weighted by their examples
    sys.path.insert(0, str(FLOWER_CLIENT.parent))
    try:
        from flower_client import SoftmaxClient
    finally:
        sys.path.pop(0)
    _, _, metrics = SoftmaxClient(99).evaluate(final, {})
    assert metrics["accuracy"] > 0.8  # the securely summed model classifies data none of them held
    assert "agent ready: the Flower client" in (tmp_path / "agent-0.log").read_text()
