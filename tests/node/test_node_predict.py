"""`fedge-node predict`: a published model verified with the pinned key, then run by onnxruntime-web.

Its probabilities must be Python's `fedge models predict` (onnxruntime) for the same samples, from
a registry folder and over the gateway's HTTP; one flipped byte, or another key, is refused and
nothing runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedge.server.config import ServerSettings
from fedge.server.daemon import start
from fedge.server.publishing import Publisher
from fedge.shared import registry
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.simulation import SimulationConfig, run
from fedge.simulation.loopback import free_port
from tests.cohort import NODE_CLIENT, node_or_skip
from tests.server.conftest import small_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node() -> str:
    return node_or_skip()


@pytest.fixture(scope="module")
def simulation(tmp_path_factory) -> tuple[Path, str]:
    """A simulation's newest published version (synthetic IMU: its manifest normalises), and the key."""
    out = tmp_path_factory.mktemp("sim")
    run(SimulationConfig(dataset="synthetic-imu", rounds=2, local_epochs=1, publish="best"), out)
    root = out / "coordinator" / "registry"
    version = registry.published_versions(root, "simulation")[-1]
    key = registry.load(registry.key_path(out / "coordinator")).public_key().public_bytes().hex()
    return registry.version_folder(root, "simulation", version), key


def node_predict(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [node, str(NODE_CLIENT), "predict", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def samples(folder: Path, out: Path, count: int = 5) -> Path:
    shape = json.loads((folder / "manifest.json").read_text())["input"]["shape"]
    path = out / "x.npy"
    np.save(path, np.random.default_rng(0).normal(0.0, 2.0, (count, *shape)).astype(np.float32))
    return path


def predictions(stdout: str) -> np.ndarray:
    return np.array([list(p.values()) for p in json.loads(stdout)["predictions"]])


def test_node_predicts_what_python_predicts_from_a_registry_folder(node, simulation, tmp_path):
    folder, key = simulation
    x = samples(folder, tmp_path)
    ours = node_predict(node, "--model", str(folder), "--key", key, "--input", str(x), "--json")
    assert ours.returncode == 0, ours.stderr
    python = [sys.executable, "-m", "fedge", "models", "predict", str(folder), str(x), "--public-key", key, "--json"]
    theirs = subprocess.run(python, capture_output=True, text=True, timeout=120)
    assert theirs.returncode == 0, theirs.stderr
    assert np.allclose(predictions(ours.stdout), predictions(theirs.stdout), atol=1e-5)
    top = node_predict(node, "--model", str(folder), "--key", key, "--input", str(x), "--top", "2")
    assert top.stdout.splitlines()[0].startswith("0: ") and top.stdout.count(",") == 5  # two labels per sample


def test_node_scores_a_data_folder_as_python_does(node, simulation, tmp_path):
    folder, key = simulation
    split = [sys.executable, "-m", "fedge", "data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path)]
    assert subprocess.run(split, capture_output=True, timeout=120).returncode == 0
    heldout = tmp_path / "heldout"
    ours = node_predict(node, "--model", str(folder), "--key", key, "--input", str(heldout), "--json")
    assert ours.returncode == 0, ours.stderr
    python = [sys.executable, "-m", "fedge", "models", "predict", str(folder), str(heldout), "--public-key", key]
    theirs = subprocess.run([*python, "--json"], capture_output=True, text=True, timeout=120)
    assert theirs.returncode == 0, theirs.stderr
    assert np.allclose(predictions(ours.stdout), predictions(theirs.stdout), atol=1e-5)
    mine, python_scores = json.loads(ours.stdout), json.loads(theirs.stdout)
    assert (mine["accuracy"], mine["labelled"]) == (python_scores["accuracy"], python_scores["labelled"])
    plain = node_predict(node, "--model", str(folder), "--key", key, "--input", str(heldout))
    last = subprocess.run(python, capture_output=True, text=True, timeout=120).stdout.splitlines()[-1]
    assert plain.stdout.splitlines()[-1] == last and last.startswith("accuracy ")


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("model.onnx", "the model file does not match its manifest: expected sha256"),
        ("manifest.json", "the manifest's signature does not verify with this public key"),
        ("manifest.sig", "the manifest's signature does not verify with this public key"),
    ],
)
def test_one_flipped_byte_is_refused_and_nothing_runs(node, simulation, tmp_path, file_name, reason):
    folder, key = simulation
    tampered = shutil.copytree(folder, tmp_path / "tampered")
    data = bytearray((tampered / file_name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered / file_name).write_bytes(bytes(data))
    result = node_predict(node, "--model", str(tampered), "--key", key, "--input", str(samples(folder, tmp_path)))
    assert result.returncode == 2 and result.stdout == ""
    assert f"error: refused, not run: {reason}" in result.stderr


def test_another_key_is_refused(node, simulation, tmp_path):
    folder, _ = simulation
    other = registry.SigningKey.generate().public_key().public_bytes().hex()
    result = node_predict(node, "--model", str(folder), "--key", other, "--input", str(samples(folder, tmp_path)))
    assert result.returncode == 2 and "signature does not verify" in result.stderr


def test_node_fetches_the_latest_model_over_the_gateways_http(node, tmp_path):
    task = small_task(publish="every", publish_every=1)
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=free_port(), data_dir=tmp_path / "coordinator")
    running = start(settings, [task], gateway=True)
    try:
        coordinator = running.coordinator
        spec = model_spec(task.model, task.input_shape, len(task.labels))
        publisher = Publisher(task, spec, coordinator.registry_root, coordinator.signing_key)
        for version, seed in ((1, 0), (2, 1)):
            publisher.on_commit(version, Model(spec, seed=seed).get_weights(), {"accuracy": 0.5})
        key = coordinator.signing_key.public_key().public_bytes().hex()
        folder = registry.version_folder(coordinator.registry_root, "t", 2)
        url = f"http://{running.gateway.address}/models/t/latest"
        result = node_predict(node, "--model", url, "--key", key, "--input", str(samples(folder, tmp_path)), "--json")
        missing = node_predict(node, "--model", url.replace("t/latest", "t/9"), "--key", key, "--input", "x.npy")
    finally:
        running.stop()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 2
    from fedge.shared.onnx import runtime

    expected = runtime.probabilities(runtime.session((folder / "model.onnx").read_bytes()), np.load(tmp_path / "x.npy"))
    assert np.allclose(predictions(result.stdout), expected, atol=1e-5)
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr
