"""`fedge models list | pull | verify | predict` against a simulation's registry and a running daemon."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fedge.server.config import ServerSettings
from fedge.server.daemon import start
from fedge.server.publishing import Publisher
from fedge.shared import registry
from fedge.shared.data import normalise
from fedge.shared.data.folder import load_local_data, write_local_data
from fedge.shared.onnx import runtime
from fedge.simulation import SimulationConfig, run
from tests.server.conftest import small_task


def fedge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fedge", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def simulation(tmp_path_factory):
    """A simulation run's output folder, with versions 2 and 3 published (and their int8 copies)."""
    out = tmp_path_factory.mktemp("sim")
    config = SimulationConfig(dataset="synthetic-imu", rounds=3, local_epochs=1, publish="best")
    run(config, out)
    return out


@pytest.fixture
def pulled(simulation, tmp_path):
    result = fedge("models", "pull", "simulation", "--data-dir", str(simulation), "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "m"


def key_hex(simulation) -> str:
    return registry.load(registry.key_path(simulation / "coordinator")).public_key().public_bytes().hex()


def test_list_shows_every_published_version_with_its_metrics(simulation):
    result = fedge("models", "list", "--data-dir", str(simulation), "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    versions = registry.published_versions(simulation / "coordinator" / "registry", "simulation")
    assert versions and [m["version"] for m in listed if m["quantization"] == "fp32"] == versions
    assert all(len(bytes.fromhex(m["signature"])) == 64 and "accuracy" in m["metrics"] for m in listed)
    piped = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # stdout is a pipe, its width unknown
    table = fedge("models", "list", "--data-dir", str(simulation), env=piped)
    assert "published model(s)" in table.stdout and "int8" in table.stdout
    assert all(m["created"] in table.stdout for m in listed)  # no column cut to the 80 of a terminal


def test_pull_writes_the_three_files_verified(pulled):
    assert sorted(p.name for p in pulled.iterdir()) == ["manifest.json", "manifest.sig", "model.onnx"]


def test_verify_accepts_the_pulled_model_and_exits_zero(simulation, pulled):
    result = fedge("models", "verify", str(pulled), "--public-key", key_hex(simulation))
    assert result.returncode == 0 and result.stdout.startswith("ok: simulation version")


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("model.onnx", "the model file does not match its manifest"),
        ("manifest.json", "the signature does not verify"),
        ("manifest.sig", "the signature does not verify"),
    ],
)
def test_one_flipped_byte_is_refused_by_verify_and_predict(simulation, pulled, tmp_path, file_name, reason):
    data = bytearray((pulled / file_name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (pulled / file_name).write_bytes(bytes(data))
    np.save(tmp_path / "x.npy", np.zeros((1, 50, 6), np.float32))
    for command in (["verify", str(pulled)], ["predict", str(pulled), str(tmp_path / "x.npy")]):
        result = fedge("models", *command, "--public-key", key_hex(simulation))
        assert result.returncode != 0
        assert "refused" in result.stderr and reason in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""  # nothing was run


def test_verify_with_another_key_fails(pulled):
    other = registry.SigningKey.generate().public_key().public_bytes().hex()
    result = fedge("models", "verify", str(pulled), "--public-key", other)
    assert result.returncode != 0 and "the signature does not verify with key" in result.stderr


def test_predict_normalises_raw_samples_and_matches_onnx_runtime(simulation, pulled, tmp_path):
    raw = np.random.default_rng(1).normal(size=(4, 50, 6)).astype(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    result = fedge(
        "models", "predict", str(pulled), str(tmp_path / "raw.npy"), "--json", "--public-key", key_hex(simulation)
    )
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)["predictions"]
    manifest = json.loads((pulled / "manifest.json").read_text())
    expected = runtime.probabilities(
        runtime.session((pulled / "model.onnx").read_bytes()), normalise(raw, manifest["input"]["normalisation"])
    )
    got = np.array([[row[label] for label in manifest["labels"]] for row in predictions])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_predict_runs_without_importing_the_onnx_package(simulation, tmp_path):
    """Running a model needs ONNX Runtime only; importing ``onnx`` (for export) costs most of a second."""
    np.save(tmp_path / "one.npy", np.zeros((1, 50, 6), np.float32))
    argv = ["fedge", "models", "predict", "simulation", str(tmp_path / "one.npy"), "--data-dir", str(simulation)]
    script = (
        "import sys\nfrom fedge.cli import main\n"
        f"sys.argv = {argv!r}\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('imported onnx:', 'onnx' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0: motion-")
    assert "imported onnx: False" in result.stdout


def test_predict_reads_csv_rows_and_prints_the_likeliest_labels(simulation, tmp_path):
    np.savetxt(tmp_path / "two.csv", np.zeros((2, 300)), delimiter=",")
    result = fedge(
        "models", "predict", "simulation", str(tmp_path / "two.csv"), "--data-dir", str(simulation), "--top", "2"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("0: motion-") and lines[0].count("motion-") == 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (np.zeros((2, 50, 5), np.float32), "expected samples of shape (N, 50, 6), got (2, 50, 5)"),
        (np.full((1, 50, 6), np.nan, np.float32), "expected finite numbers"),
    ],
)
def test_predict_refuses_samples_of_the_wrong_shape_or_not_finite(simulation, tmp_path, content, reason):
    np.save(tmp_path / "bad.npy", content)
    result = fedge("models", "predict", "simulation", str(tmp_path / "bad.npy"), "--data-dir", str(simulation))
    assert result.returncode == 2 and reason in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bad.csv", b"0.5,a\n", "could not convert string 'a' to float32"),
        ("bad.npy", b"\x93NUMPY\x01\x00", ""),  # cut short after its magic
    ],
)
def test_predict_names_the_file_numpy_could_not_read(simulation, tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    result = fedge("models", "predict", "simulation", str(tmp_path / name), "--data-dir", str(simulation))
    assert result.returncode == 2 and f"{tmp_path / name}: {reason}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_predict_scores_the_heldout_folder_of_a_data_split_as_the_coordinator_did(simulation, tmp_path):
    """`fedge data split` writes the held-out split the simulation's coordinator evaluated on: run
    through ONNX Runtime, the published version scores the accuracy its manifest states."""
    assert fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path / "split")).returncode == 0
    heldout = tmp_path / "split" / "heldout"
    predict = ["models", "predict", "simulation", str(heldout), "--data-dir", str(simulation)]
    result = fedge(*predict, "--json")
    assert result.returncode == 0, result.stderr
    scored, count = json.loads(result.stdout), len(load_local_data(heldout))
    assert scored["labelled"] == count == len(scored["predictions"])
    published = simulation / "coordinator" / "registry" / "simulation" / str(scored["version"])
    manifest, _ = registry.read_published(
        published, registry.load(registry.key_path(simulation / "coordinator")).public_key()
    )
    assert abs(scored["accuracy"] - manifest.metrics["accuracy"]) <= 1 / count  # argmax ties aside
    last = fedge(*predict).stdout.splitlines()[-1]
    assert last == f"accuracy {scored['accuracy']:.4f} on the {count} labelled samples of {heldout}"


def test_predict_normalises_a_raw_folder_and_refuses_one_normalised_otherwise(simulation, pulled, tmp_path):
    raw = np.random.default_rng(1).normal(size=(4, 50, 6)).astype(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    labels = json.loads((pulled / "manifest.json").read_text())["labels"]
    write_local_data(tmp_path / "raw", raw, np.arange(4) % len(labels), labels, dataset="mine", normalisation={})
    by_file, by_folder = (
        fedge("models", "predict", "simulation", str(tmp_path / inputs), "--data-dir", str(simulation), "--json")
        for inputs in ("raw.npy", "raw")
    )
    assert json.loads(by_folder.stdout)["predictions"] == json.loads(by_file.stdout)["predictions"]
    other = {"method": "standardise", "channels": [f"c{i}" for i in range(6)], "mean": [0.0] * 6, "std": [2.0] * 6}
    write_local_data(tmp_path / "other", raw, np.zeros(4, np.int64), labels, dataset="mine", normalisation=other)
    result = fedge("models", "predict", "simulation", str(tmp_path / "other"), "--data-dir", str(simulation))
    assert result.returncode == 2 and "got samples normalised otherwise" in " ".join(result.stderr.split())


def test_pull_verify_against_a_running_daemon(tmp_path):
    settings = ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path / "coordinator")
    running = start(settings, [small_task()])
    try:
        coordinator = running.coordinator
        task = small_task(publish="every", publish_every=1)
        publisher = Publisher(task, coordinator.tasks["t"].spec, coordinator.registry_root, coordinator.signing_key)
        publisher.on_commit(1, coordinator.tasks["t"].weights, {"accuracy": 0.5})
        public = coordinator.signing_key.public_key()
        key = public.public_bytes().hex()
        out = tmp_path / "pulled"

        unverified = fedge("models", "verify", "t", "--server", running.address)
        pulled = fedge("models", "pull", "t@1", "--server", running.address, "--public-key", key, "--out", str(out))
        verified = fedge("models", "verify", "t", "--server", running.address, "--public-key", key)
        missing = fedge("models", "pull", "t@7", "--server", running.address)
    finally:
        running.stop(grace=0.5)
    assert unverified.returncode == 2 and "no public key to check the signature with" in unverified.stderr
    assert pulled.returncode == 0 and f"verified with key {public.fingerprint()}" in pulled.stdout, pulled.stderr
    assert registry.read_published(out, registry.VerifyKey.from_bytes(bytes.fromhex(key)))[0].version == 1
    assert verified.returncode == 0 and "signature verified" in verified.stdout
    assert missing.returncode == 2 and "NOT_FOUND: task 't' has no published fp32 version 7" in missing.stderr


def test_a_registry_folder_inside_a_data_dir_is_checked_with_that_data_dirs_key(simulation, tmp_path):
    folder = simulation / "coordinator" / "registry" / "simulation"
    version = sorted(folder.iterdir())[-1]
    assert fedge("models", "verify", str(version)).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(version, copy)
    assert "no public key" in fedge("models", "verify", str(copy)).stderr  # outside it, a key must be given


def test_a_simulation_still_running_is_read_through_its_coordinator_folder(simulation, tmp_path):
    running = tmp_path / "running"  # what `fedge simulate --out` holds before it writes summary.json
    shutil.copytree(simulation / "coordinator", running / "coordinator")
    result = fedge("models", "list", "--data-dir", str(running), "--json")
    assert result.returncode == 0, result.stderr
    versions = registry.published_versions(running / "coordinator" / "registry", "simulation")
    assert [m["version"] for m in json.loads(result.stdout) if m["quantization"] == "fp32"] == versions
