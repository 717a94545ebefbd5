"""Publishing committed versions: the policy, the files, int8 copies, and catching up after a crash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedge.server.coordinator import Coordinator
from fedge.server.publishing import Publisher
from fedge.shared import data, registry
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.onnx import runtime

from .conftest import small_task


def publisher(tmp_path, splits=None, **task):
    config = small_task(**task)
    spec = model_spec(config.model, config.input_shape, len(config.labels))
    return Publisher(config, spec, tmp_path / "registry", registry.SigningKey.generate(), splits), Model(spec, seed=0)


def heldout_splits(n: int = 64) -> data.Splits:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 8, 2)).astype(np.float32), rng.integers(0, 3, n)
    norm = {"method": "standardise", "channels": ["ax", "ay"], "mean": [0.5, -0.5], "std": [2.0, 4.0]}
    sets = [data.Dataset("fixture", x, y, ("a", "b", "c")) for _ in range(2)]
    return data.Splits(*sets, normalisation=norm)


def test_every_n_rounds_publishes_each_nth_version_and_the_last(tmp_path):
    pub, model = publisher(tmp_path, publish="every", publish_every=2, rounds=5)
    for version in range(1, 6):
        pub.on_commit(version, model.get_weights(), {"accuracy": 0.5})
    assert registry.published_versions(tmp_path / "registry", "t") == [2, 4, 5]


def test_best_publishes_only_versions_that_improve_the_metric(tmp_path):
    pub, model = publisher(tmp_path, publish="best", rounds=9)
    for version, accuracy in enumerate([0.5, 0.4, 0.5, 0.7, float("nan"), 0.6], start=1):
        pub.on_commit(version, model.get_weights(), {"accuracy": accuracy})
    assert registry.published_versions(tmp_path / "registry", "t") == [1, 4]


def test_best_by_loss_means_lower_is_better(tmp_path):
    pub, model = publisher(tmp_path, publish="best", publish_metric="loss", rounds=9)
    for version, loss in enumerate([1.0, 1.2, 0.8], start=1):
        pub.on_commit(version, model.get_weights(), {"loss": loss})
    assert registry.published_versions(tmp_path / "registry", "t") == [1, 3]


def test_never_publishes_nothing(tmp_path):
    pub, model = publisher(tmp_path, publish="never")
    pub.on_commit(3, model.get_weights(), {"accuracy": 0.9})
    assert registry.published_versions(tmp_path / "registry", "t") == []


def test_a_published_version_is_signed_and_describes_its_model(tmp_path):
    splits = heldout_splits()
    pub, model = publisher(tmp_path, splits, publish="every", publish_every=1)
    pub.on_commit(2, model.get_weights(), {"accuracy": 0.75, "loss": 0.6, "clients": 2, "duration_s": 1.5})

    manifest, onnx_bytes = registry.read_published(tmp_path / "registry" / "t" / "2", pub.key.public_key())
    assert (manifest.task, manifest.version, manifest.round, manifest.labels) == ("t", 2, 2, ("a", "b", "c"))
    assert manifest.metrics == {"accuracy": 0.75, "loss": 0.6}  # held-out figures only, not round bookkeeping
    assert manifest.input["normalisation"] == splits.normalisation
    assert (manifest.input["shape"], manifest.input["layout"], manifest.input["dtype"]) == ([8, 2], "NWC", "float32")
    x = splits.heldout.x[:5]
    expected = model(x).data
    logits = runtime.session(onnx_bytes).run(["logits"], {"input": x})[0]
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_an_int8_copy_reports_its_accuracy_beside_fp32(tmp_path):
    splits = heldout_splits()
    pub, model = publisher(tmp_path, splits, publish="every", publish_every=1, publish_int8=True)
    pub.on_commit(1, model.get_weights(), {"accuracy": 0.4, "loss": 1.1})

    folder = registry.version_folder(tmp_path / "registry", "t", 1, "int8")
    manifest, int8 = registry.read_published(folder, pub.key.public_key())
    assert manifest.quantization == "int8" and manifest.name == "t-int8"
    assert manifest.metrics["fp32_accuracy"] == 0.4
    measured = runtime.evaluate(runtime.session(int8), splits.heldout.x, splits.heldout.y)
    assert manifest.metrics["accuracy"] == measured["accuracy"]
    assert registry.published_variants(tmp_path / "registry", "t", 1) == ["fp32", "int8"]


def test_a_failure_to_publish_is_logged_and_the_rounds_go_on(tmp_path, caplog):
    pub, model = publisher(tmp_path, publish="every", publish_every=1)
    assert pub.on_commit(1, [w[:1] for w in model.get_weights()], {"accuracy": 0.5}) is None  # wrong shapes
    assert "publishing version 1 failed" in caplog.text


def test_a_coordinator_publishes_what_it_commits(tmp_path):
    from fedge.simulation import SimulationConfig, run

    summary = run(SimulationConfig(dataset="synthetic-imu", rounds=3, local_epochs=1, publish="every"), tmp_path)
    root = tmp_path / "coordinator" / "registry"
    key = registry.load(registry.key_path(tmp_path / "coordinator")).public_key()
    assert registry.published_versions(root, "simulation") == [3]  # publish_every 5: only the last of 3
    manifest, _ = registry.read_published(root / "simulation" / "3", key)
    assert manifest.metrics["accuracy"] == summary["final_accuracy"]
    assert registry.published_variants(root, "simulation", 3) == ["fp32", "int8"]


def test_a_version_a_crash_left_unpublished_is_published_at_restart(tmp_path):
    task = small_task(publish="every", publish_every=1, rounds=3)
    coordinator = Coordinator([task], tmp_path)
    rounds = coordinator.tasks["t"]
    coordinator.store.commit_version("t", rounds.live.round_id, 1, rounds.weights, {}, {"accuracy": 0.3}, False)
    coordinator.publishing.shutdown(wait=True)
    coordinator.store.close()  # no publish ran: as if the process died right after the commit
    assert registry.published_versions(tmp_path / "registry", "t") == []

    restarted = Coordinator([task], tmp_path)
    restarted.close()
    assert registry.published_versions(tmp_path / "registry", "t") == [1]
    manifest_json = (tmp_path / "registry" / "t" / "1" / registry.MANIFEST).read_bytes()
    assert json.loads(manifest_json)["metrics"] == {"accuracy": 0.3}


def test_best_without_held_out_data_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="publish = 'best' compares held-out metrics: it needs evaluate_on"):
        Coordinator([small_task(publish="best")], tmp_path)
