"""Publishing committed versions: the policy, the files, int8 copies, and catching up after a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from fedge.server.config import FieldError
from fedge.server.coordinator import Coordinator
from fedge.server.publishing import Publisher
from fedge.shared import data, registry
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.onnx import runtime
from fedge.shared.onnx.weights import read_weights
from fedge.shared.training import TrainConfig

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


def test_best_by_the_devices_scores_publishes_the_version_they_scored(tmp_path):
    # round N's devices score version N - 1, the model they received: the decision is about that one
    pub, model = publisher(
        tmp_path, publish="best", publish_metric="eval_accuracy", rounds=9, training=TrainConfig(holdout=0.2)
    )
    versions = {v: ([w + v for w in model.get_weights()], {"loss": 1.0 / (v + 1)}) for v in range(6)}
    pub.committed = versions.__getitem__
    for version, score in enumerate([0.9, 0.5, 0.4, 0.7, 0.6], start=1):  # 0.9: the initial model's
        pub.on_commit(version, versions[version][0], {"eval_accuracy": score, "eval_loss": 1 - score})
    assert registry.published_versions(tmp_path / "registry", "t") == [1, 3]

    manifest, onnx_bytes = registry.read_published(tmp_path / "registry" / "t" / "3", pub.key.public_key())
    assert manifest.metrics == {"loss": 0.25, "eval_accuracy": 0.7, "eval_loss": pytest.approx(0.3)}
    _, weights = read_weights(onnx_bytes)
    for got, expected in zip(weights, versions[3][0], strict=True):
        np.testing.assert_array_equal(got, expected)


def test_the_devices_scores_of_an_earlier_version_stay_out_of_this_version_s_manifest(tmp_path):
    pub, model = publisher(tmp_path, publish="every", publish_every=1, training=TrainConfig(holdout=0.2))
    pub.on_commit(1, model.get_weights(), {"accuracy": 0.6, "eval_accuracy": 0.3})
    manifest, _ = registry.read_published(tmp_path / "registry" / "t" / "1", pub.key.public_key())
    assert manifest.metrics == {"accuracy": 0.6}


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


def test_a_fedexp_version_a_crash_left_unpublished_is_published_as_its_mean_with_the_one_before(tmp_path):
    task = small_task(publish="every", publish_every=1, rounds=3, strategy="fedexp")
    coordinator = Coordinator([task], tmp_path)
    rounds = coordinator.tasks["t"]
    moved = [w + 1 for w in rounds.weights]  # version 1 = version 0 + 1: its readout is version 0 + 0.5
    coordinator.store.commit_version("t", rounds.live.round_id, 1, moved, {}, {"accuracy": 0.3}, False)
    coordinator.publishing.shutdown(wait=True)
    coordinator.store.close()

    restarted = Coordinator([task], tmp_path)
    restarted.close()
    key = registry.load(registry.key_path(tmp_path)).public_key()
    _, onnx_bytes = registry.read_published(tmp_path / "registry" / "t" / "1", key)
    for published, start in zip(read_weights(onnx_bytes)[1], rounds.weights, strict=True):
        np.testing.assert_allclose(published, start + 0.5, rtol=0, atol=1e-6)


def test_best_without_held_out_data_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="publish = 'best' compares held-out metrics: it needs evaluate_on, or"):
        Coordinator([small_task(publish="best")], tmp_path)


def test_best_by_the_devices_scores_needs_devices_that_hold_samples_out():
    with pytest.raises(FieldError, match=r"expected publish_metric to be accuracy or loss unless .* holdout > 0"):
        small_task(publish="best", publish_metric="eval_accuracy")


def test_a_coordinator_without_held_out_data_publishes_the_best_version_its_devices_scored(tmp_path):
    from fedge.simulation import SimulationConfig
    from fedge.simulation.inprocess import Federation, SimulatedClock, enroll_agents, play_round

    config = SimulationConfig(dataset="synthetic-imu", rounds=5, local_epochs=1, holdout=0.25, publish="best")
    federation = Federation.from_config(config)
    task = replace(federation.task, publish_metric="eval_accuracy", publish_int8=False)
    coordinator = Coordinator([task], tmp_path)  # no evaluate_on, no splits: the devices' scores only
    try:
        agents = enroll_agents(coordinator, replace(federation, task=task), seed=0)
        rng, clock = np.random.default_rng(0), SimulatedClock()
        while not coordinator.tasks[task.name].completed:
            play_round(coordinator, agents, rng, clock, task_id=task.name)
        rows = coordinator.store.query("SELECT version, metrics_json FROM versions WHERE version > 1")
        last = coordinator.store.query("SELECT number, metrics_json FROM rounds WHERE phase = 'scored'")
        status = coordinator.store.query("SELECT version, status FROM tasks")
    finally:
        coordinator.close()  # after the publishing thread is done

    scores = {row["version"] - 1: json.loads(row["metrics_json"])["eval_accuracy"] for row in rows}
    # the task closes with a scoring round: round 6 trains nothing, its devices score version 5
    assert [r["number"] for r in last] == [6] and json.loads(last[0]["metrics_json"])["version"] == 5
    assert [tuple(r) for r in status] == [(5, "completed")]
    scores[5] = json.loads(last[0]["metrics_json"])["eval_accuracy"]
    best = [v for v in sorted(scores) if scores[v] > max([scores[u] for u in scores if u < v], default=-1)]
    root, key = tmp_path / "registry", registry.load(registry.key_path(tmp_path)).public_key()
    assert registry.published_versions(root, task.name) == best and best
    for version in best:
        manifest, _ = registry.read_published(root / task.name / str(version), key)
        assert manifest.metrics["eval_accuracy"] == scores[version]
    listed = subprocess.run(
        [sys.executable, "-m", "fedge", "models", "list", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160"},  # one line per row
    )
    assert "on devices" in listed.stdout and f"{scores[best[-1]]:.4f}" in listed.stdout, listed.stderr
