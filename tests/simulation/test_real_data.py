"""The acceptance runs on real data: the default smartwatch federation and Fashion-MNIST."""

from __future__ import annotations

import pytest

from fedge.shared import data
from fedge.simulation import SimulationConfig, run
from fedge.simulation.report import read_metrics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # each runs whole federations


def test_default_federation_is_within_three_points_of_centralized(tmp_path, load_or_skip):
    load_or_skip(lambda: data.load("watch"))
    summary = run(SimulationConfig(centralized=True), tmp_path)

    assert (summary["dataset"], summary["model"], summary["partition"]) == ("watch", "har-cnn1d", "natural")
    assert summary["clients"] == 10  # one per subject
    assert summary["centralized_accuracy"] > 0.85  # 7 exercises: chance is about 0.17
    assert summary["final_accuracy"] >= summary["centralized_accuracy"] - 0.03


def test_digits_cnn_learns_fashion_mnist_under_label_skew(tmp_path, load_or_skip):
    load_or_skip(lambda: data.load("fashion-mnist", limit=10))
    config = SimulationConfig(
        dataset="fashion-mnist", model="digits-cnn", partition="dirichlet:0.5", clients=20, rounds=5,
        dataset_options={"limit": 6000},
    )  # fmt: skip
    summary = run(config, tmp_path)
    accuracy = [r["accuracy"] for r in read_metrics(tmp_path / "metrics.jsonl")]

    assert summary["final_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert accuracy[-1] > accuracy[0] + 0.1


def test_secure_aggregation_keeps_the_default_federations_accuracy(tmp_path, load_or_skip):
    load_or_skip(lambda: data.load("watch"))
    plain = run(SimulationConfig(), tmp_path / "plain")
    secure = run(SimulationConfig(secagg=True), tmp_path / "secure")

    assert secure["secagg"] and not plain["secagg"]
    assert abs(secure["final_accuracy"] - plain["final_accuracy"]) <= 0.01
