"""The in-process simulation on small synthetic data: outputs, learning, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedge.cli.admin import DataDirAdmin, status_tables
from fedge.server.rounds import held_out_evaluator
from fedge.server.store import Store
from fedge.shared import data
from fedge.shared.data.local import write_split
from fedge.shared.onnx.weights import read_weights
from fedge.simulation import SimulationConfig, run
from fedge.simulation.inprocess import TASK
from fedge.simulation.report import read_metrics

SMALL = {"dataset": "synthetic-imu", "rounds": 4, "local_epochs": 1, "lr": 0.05}


def test_a_run_writes_metrics_summary_and_plot(tmp_path):
    summary = run(SimulationConfig(**SMALL), tmp_path)

    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["round"] for r in records] == [1, 2, 3, 4]
    assert {"round", "clients", "loss", "accuracy", "duration_s"} <= set(records[0])
    assert all(r["clients"] == 4 for r in records)  # synthetic-imu: 4 subjects, one client each
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["final_accuracy"] == records[-1]["accuracy"] == summary["final_accuracy"]
    assert {"dataset", "model", "partition", "clients", "rounds"} <= set(on_disk)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_federated_training_learns_well_above_chance(tmp_path):
    summary = run(SimulationConfig(**{**SMALL, "rounds": 6, "local_epochs": 3}), tmp_path)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert summary["final_accuracy"] > 0.8  # 4 classes: chance is 0.25
    assert records[-1]["loss"] < records[0]["loss"]


def test_same_seed_gives_identical_runs_and_another_seed_does_not(tmp_path):
    a = run(SimulationConfig(**SMALL, seed=1), tmp_path / "a")
    b = run(SimulationConfig(**SMALL, seed=1), tmp_path / "b")
    c = run(SimulationConfig(**SMALL, seed=2), tmp_path / "c")
    assert a["final_loss"] == b["final_loss"]
    assert a["final_loss"] != c["final_loss"]


def test_centralized_baseline_is_reported(tmp_path):
    summary = run(SimulationConfig(**SMALL, centralized=True), tmp_path)
    assert summary["centralized_epochs"] == 4
    assert 0.25 < summary["centralized_accuracy"] <= 1.0


def test_with_local_steps_the_centralized_budget_is_the_cohort_s_batches(tmp_path):
    # synthetic-imu: 4 clients taking 3 steps of 8 samples: the pooled model takes 12 such steps a round
    summary = run(SimulationConfig(**SMALL, local_steps=3, batch_size=8, centralized=True), tmp_path)
    samples = len(data.load("synthetic-imu").train.x)
    assert summary["centralized_epochs"] == round(4 * 12 * 8 / samples, 2)
    assert 0.25 < summary["centralized_accuracy"] <= 1.0


def test_with_a_holdout_clients_score_each_model_they_receive(tmp_path):
    run(SimulationConfig(**{**SMALL, "local_epochs": 3}, holdout=0.2), tmp_path)
    records = read_metrics(tmp_path / "metrics.jsonl")
    scores = [r["eval_accuracy"] for r in records]
    assert all(0 <= s <= 1 for s in scores)
    assert scores[-1] > scores[0]  # round 1 scores the initial model; round 4 one trained for 3 rounds
    summary = json.loads((tmp_path / "summary.json").read_text())
    store = Store(tmp_path / "coordinator")
    try:  # the scoring round after the last commit: the devices' score of version 4 itself
        last = store.scores(TASK)
    finally:
        store.close()
    assert last["version"] == summary["devices_version"] == 4 and last["round"] == 5
    assert summary["devices_accuracy"] == last["eval_accuracy"]
    document = DataDirAdmin(tmp_path / "coordinator").status()
    table = status_tables(document)[0]
    assert [c.header for c in table.columns][-3:] == ["accuracy", "on devices", "note"]
    figures = [part.split()[0] for part in str(table.title).split("  ", 1)[1].split(", ")]
    assert figures[:4] == ["accuracy", "loss", "eval_accuracy", "eval_loss"] and "train_loss" in figures[4:]


def test_a_cohort_is_a_subset_of_clients_each_round(tmp_path):
    run(SimulationConfig(**{**SMALL, "partition": "iid", "clients": 6, "clients_per_round": 2}), tmp_path)
    assert {r["clients"] for r in read_metrics(tmp_path / "metrics.jsonl")} == {2}


def test_another_strategy_is_used_when_asked(tmp_path):
    summary = run(SimulationConfig(**SMALL, strategy="fedavgm", strategy_options={"server_lr": 0.5}), tmp_path)
    assert summary["strategy"] == "fedavgm"
    assert "server_step" not in read_metrics(tmp_path / "metrics.jsonl")[0]


def test_fedexp_records_the_server_step_it_took_each_round(tmp_path):
    skewed = {**SMALL, "partition": "dirichlet:0.3", "clients": 8}
    summary = run(SimulationConfig(**skewed, strategy="fedexp", publish="every"), tmp_path)
    steps = [r["server_step"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert len(steps) == 4 and all(s >= 1 for s in steps)
    assert max(steps) > 1  # label-skewed clients disagree, and the server extrapolates
    assert summary["final_accuracy"] > 0.25

    # evaluated and published: the mean of the last two versions, not the last one
    store = Store(tmp_path / "coordinator")
    before, last = store.load_weights(TASK, 3), store.load_weights(TASK, 4)
    spec = json.loads(store.query("SELECT spec_json FROM tasks")[0]["spec_json"])
    store.close()
    mean = [((a.astype(np.float64) + b) / 2).astype(np.float32) for a, b in zip(before, last, strict=True)]
    evaluate = held_out_evaluator(data.load("synthetic-imu").heldout, spec)
    assert summary["final_accuracy"] == evaluate(mean)["accuracy"] != evaluate(last)["accuracy"]
    onnx = (tmp_path / "coordinator" / "registry" / TASK / "4" / "model.onnx").read_bytes()
    for published, expected in zip(read_weights(onnx)[1], mean, strict=True):
        np.testing.assert_array_equal(published, expected)


def test_fednova_scales_by_the_cohorts_local_work_when_clients_hold_unequal_data(tmp_path):
    skewed = {**SMALL, "partition": "dirichlet:0.3", "clients": 8, "batch_size": 8}
    summary = run(SimulationConfig(**skewed, strategy="fednova"), tmp_path)
    steps = [r["server_step"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert len(steps) == 4 and all(s > 1 for s in steps)  # unequal local steps: s = (Σ nᵢaᵢ)(Σ nᵢ/aᵢ)/N² > 1
    assert summary["final_accuracy"] > 0.25


def test_fedexp_is_refused_with_secure_aggregation(tmp_path):
    with pytest.raises(ValueError, match=r"works on a sum \(not fedexp, fednova, median, trimmed_mean, krum\)"):
        run(SimulationConfig(**SMALL, strategy="fedexp", secagg=True), tmp_path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rounds": 0}, "expected rounds >= 1, got 0"),
        ({"lr": -1.0}, "expected lr > 0"),
        ({"optimizer": "rmsprop"}, "expected optimizer in"),
        ({"lr_schedule": "step"}, "expected lr schedule"),
        ({"clients_per_round": 0}, "expected clients per round >= 1"),
    ],
)
def test_a_bad_config_is_refused_before_anything_runs(options, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**{**SMALL, **options})


def untimed(out) -> list[dict]:
    """A run's metrics without the seconds its rounds took."""
    return [{k: v for k, v in r.items() if k != "duration_s"} for r in read_metrics(out / "metrics.jsonl")]


def test_fedge_data_splits_output_simulates_as_the_dataset_it_came_from(tmp_path):
    """Samples of one's own: the folders `fedge data split` writes are the same federation (a
    client per folder, scored on heldout/), round for round."""
    splits = data.load("synthetic-imu")
    clients = [splits.train.subset(index) for index in data.partition(splits.train, "natural", None, 0)]
    write_split(tmp_path / "split", clients, splits.heldout, splits.normalisation)
    built_in = run(SimulationConfig(**SMALL), tmp_path / "built-in")
    own = run(SimulationConfig(**{**SMALL, "dataset": str(tmp_path / "split")}), tmp_path / "own")
    assert own["partition"] == "natural" and own["clients"] == built_in["clients"] == 4
    assert untimed(tmp_path / "own") == untimed(tmp_path / "built-in")
    one = run(SimulationConfig(**{**SMALL, "dataset": str(tmp_path / "split" / "client-000")}), tmp_path / "one")
    assert (one["partition"], one["clients"], one["model"]) == ("iid", 10, "har-cnn1d")  # no subjects in one folder
    with pytest.raises(ValueError, match=r"expected --dataset among watch, .* or the output of `fedge data split`"):
        SimulationConfig(dataset=str(tmp_path / "missing"))


def test_an_unknown_strategy_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"expected strategy one of .*got 'fedsgd'"):
        run(SimulationConfig(**SMALL, strategy="fedsgd"), tmp_path)


def test_a_dropout_vanishes_from_the_current_round_not_from_the_last_ones_leftover_stage():
    from types import SimpleNamespace

    import numpy as np

    from fedge.simulation.inprocess import Dropouts

    def agent(round_id: int, stage: str) -> SimpleNamespace:
        return SimpleNamespace(secure=SimpleNamespace(stage=stage, assignment=SimpleNamespace(round_id=round_id)))

    dropouts = Dropouts(0.5, np.random.default_rng(0))
    dropouts.round_id, dropouts.plan = 6, {0: "unmask"}
    assert not dropouts.gone(0, agent(5, "unmask"))  # round 5's session still finishes
    assert dropouts.gone(0, agent(6, "unmask"))
    assert not dropouts.gone(1, agent(6, "unmask"))  # not drawn


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_a_secure_run_sums_up_its_rounds_from_the_coordinators_store(tmp_path, dropout):
    from fedge.cli.simulate import summary_table

    config = SimulationConfig(**{**SMALL, "clients": 8, "partition": "iid"}, secagg=True, dropout=dropout)
    summary = run(config, tmp_path)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert (summary["secagg_neighbours"], summary["secagg_threshold"]) == (7, 4)  # every other client, of 8
    # what the store counts is what the rounds reported: every client is selected every round
    assert summary["secagg_missing_inputs"] == sum(8 - r["clients"] for r in records)
    assert (summary["secagg_missing_inputs"] > 0) == (dropout > 0) and summary["secagg_failed_rounds"] == 0
    rows = {row[0]: row[1] for row in zip(*(column._cells for column in summary_table(summary).columns), strict=True)}
    assert rows["secure aggregation"] == (
        f"SecAgg+, k = 7, t = 4: {summary['secagg_missing_inputs']} selected clients sent no masked input; "
        "0 rounds failed and were retried"
    )
