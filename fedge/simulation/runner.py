"""Runs a simulation end to end and writes what it leaves in ``out``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedge.server.store import Store
from fedge.shared.nn import Model
from fedge.simulation import cluster, loopback
from fedge.simulation.config import SimulationConfig
from fedge.simulation.inprocess import TASK, Federation, run_centralized, run_rounds
from fedge.simulation.report import MetricsLog, plot, read_config, read_metrics, write_config, write_summary

RESUMABLE_CHANGES = {"centralized"}  # settings a resumed run may change: they do not touch the federated rounds


def run(
    config: SimulationConfig,
    out: Path,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_centralized_round: Callable[[int], None] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """With ``resume``, carry on the run stopped in ``out`` (started with the same settings) from
    its coordinator's last committed round."""
    records = previous_records(out, config) if resume else []
    federation = Federation.from_config(config)
    write_config(out, config.to_dict())
    log = MetricsLog(out, records)
    after = (records[-1]["version"] if records else 0) if resume else None
    if config.backend == "grpc":
        data_dir = out / "loopback" / "coordinator"
        rounds = loopback.run_rounds(config, federation, out / "loopback", after)
    elif config.backend == "ray":
        data_dir = out / "coordinator"
        rounds = cluster.run_rounds(config, federation, data_dir, after)
    else:
        data_dir = out / "coordinator"
        rounds = run_rounds(config, federation, data_dir, after)
    try:
        for record in rounds:
            log.write(record)
            records.append(record)
            if on_round:
                on_round(record)
    finally:
        rounds.close()  # now, not when collected: a stopped run's daemon, agents or actors stop before this returns
        log.close()
    summary = {
        "dataset": config.dataset,
        "model": config.model,
        "partition": config.partition,
        "clients": len(federation.clients),
        "rounds": config.rounds,
        "strategy": config.strategy,
        "parameters": Model(federation.spec).num_parameters,
        "backend": config.backend,
        "secagg": config.secagg,
        "dropout": config.dropout,
        "dp_clip": config.dp_clip,
        "dp_noise": config.dp_noise,
        "coordinator_data_dir": str(data_dir),
        "published": published(data_dir),
        "train_examples": len(federation.splits.train),
        "heldout_examples": len(federation.splits.heldout),
        "final_accuracy": records[-1]["accuracy"],
        "final_loss": records[-1]["loss"],
        **({"epsilon": records[-1]["epsilon"], "delta": records[-1]["delta"]} if "epsilon" in records[-1] else {}),
        **devices_score(records, data_dir),
        **(secure_rounds(federation, data_dir) if config.secagg else {}),
        "best_accuracy": max(r["accuracy"] for r in records),
        "duration_s": sum(r["duration_s"] for r in records),
        "config": config.to_dict(),
    }
    if config.centralized:
        central = run_centralized(config, federation, on_centralized_round)
        summary["centralized_accuracy"] = central["accuracy"]
        summary["centralized_loss"] = central["loss"]
        summary["centralized_epochs"] = central["epochs"]
    write_summary(out, summary)
    last = (summary["devices_version"], summary["devices_accuracy"]) if "devices_version" in summary else None
    plot(out, records, summary.get("centralized_accuracy"), last)
    return summary


def devices_score(records: list[dict[str, Any]], data_dir: Path) -> dict[str, Any]:
    """With a holdout, the clients' score of the last version, from the task's scoring round (or,
    in a run stopped before it, of the version the last round's clients received)."""
    if "eval_accuracy" not in records[-1]:
        return {}
    store = Store(data_dir)
    try:
        scores = store.scores(TASK)
    finally:
        store.close()
    if "eval_accuracy" in scores:
        return {"devices_accuracy": scores["eval_accuracy"], "devices_version": scores["version"]}
    return {"devices_accuracy": records[-1]["eval_accuracy"], "devices_version": records[-1]["version"] - 1}


def secure_rounds(federation: Federation, data_dir: Path) -> dict[str, Any]:
    """How the secure rounds went, as the coordinator's store tells it: the neighbours and
    threshold they masked with, selected clients that sent no masked input, rounds retried."""
    from fedge.server.secagg import automatic_neighbours, automatic_threshold

    task, store = federation.task, Store(data_dir)
    try:
        missing = store.query(
            "SELECT COUNT(*) AS n FROM participants JOIN rounds USING (round_id)"
            " WHERE task_id = ? AND phase = 'committed' AND status != 'reported'",
            (TASK,),
        )[0]["n"]
        failed = store.query("SELECT COUNT(*) AS n FROM rounds WHERE task_id = ? AND phase = 'failed'", (TASK,))
    finally:
        store.close()
    n = task.cohort_size
    k = task.secagg_neighbours or automatic_neighbours(n)
    t = task.secagg_threshold or automatic_threshold(k, n)
    return {
        "secagg_neighbours": min(k, n - 1),  # the neighbours a client has: at most the n - 1 others
        "secagg_threshold": t,
        "secagg_missing_inputs": missing,
        "secagg_failed_rounds": failed[0]["n"],
    }


def previous_records(out: Path, config: SimulationConfig) -> list[dict[str, Any]]:
    """The rounds a stopped run in ``out`` reported, once its settings are checked to be these."""
    saved = read_config(out)
    current = json.loads(json.dumps(config.to_dict()))  # as saved: tuples become lists
    changed = sorted(k for k in (saved.keys() | current.keys()) - RESUMABLE_CHANGES if saved.get(k) != current.get(k))
    if changed:
        was = ", ".join(f"{k} {saved.get(k)!r} (now {current.get(k)!r})" for k in changed)
        raise ValueError(f"{out} holds a run with other settings; run the same command to resume it: {was}")
    metrics = out / "metrics.jsonl"
    return read_metrics(metrics) if metrics.exists() else []


def published(data_dir: Path) -> str:
    """What the run published, in words: "versions 3, 5 and 9 of task simulation" or ""."""
    from fedge.shared import registry

    root = data_dir / "registry"
    found = [(task, registry.published_versions(root, task)) for task in registry.published_tasks(root)]
    return "; ".join(f"versions {', '.join(map(str, v))} of task {t}" for t, v in found if v)
