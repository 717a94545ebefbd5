"""What ``fedge status`` and the dashboard show: tasks, their rounds, the live round, clients.

    tasks[]     version / rounds_total, status, model, strategy, latest_metrics,
                rounds_committed and attempts_failed (all time: counters for /metrics),
                stages (the phases a round walks), secagg, dp,
                live (the open round: phase and the deadline of its stage), or null,
                rounds (the last attempts, newest first, with phase, counts, reason, metrics),
                history (metrics of the last committed versions, oldest first: the plots)
    clients[]   client_id, platform ("<platform>/<backend>" for browsers), name, enrolled_at,
                last_seen, revoked
    unused_tokens, now (the coordinator's clock, so ages and countdowns ignore the viewer's)

Everything is read from the store, so it is the state a restarted coordinator would carry on
from. The store keeps ``last_seen`` and a live round's participants in memory for a few seconds
(``store.FLUSH_S``) before writing them: the counts of a live round may lag by that much.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fedge.server.store import CLOSED_PHASES, Store

PLAIN_STAGES = ("select", "train", "aggregate", "commit")
SECURE_STAGES = ("select", "advertise", "share", "train", "unmask", "aggregate", "commit")
HISTORY = 100  # committed versions per task whose metrics the dashboard plots


def status(store: Store, rounds_per_task: int = 10, history_per_task: int = HISTORY) -> dict[str, Any]:
    tasks = [
        _task(store, row, rounds_per_task, history_per_task)
        for row in store.query("SELECT task_id, version, status, config_json FROM tasks ORDER BY task_id")
    ]
    clients = [
        dict(r)
        for r in store.query(
            "SELECT client_id, platform, name, enrolled_at, last_seen, revoked_at IS NOT NULL AS revoked"
            " FROM clients ORDER BY enrolled_at"
        )
    ]
    tokens = store.query("SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NULL AND revoked_at IS NULL")
    return {"tasks": tasks, "clients": clients, "unused_tokens": tokens[0]["n"], "now": time.time()}


def _task(store: Store, row: Any, rounds_per_task: int, history_per_task: int) -> dict[str, Any]:
    config = json.loads(row["config_json"])
    rounds = store.query(
        "SELECT round_id, number, attempt, phase, reason, metrics_json, opened_at, closed_at, "
        "(SELECT COUNT(*) FROM participants p WHERE p.round_id = r.round_id) AS selected, "
        "(SELECT COUNT(*) FROM participants p WHERE p.round_id = r.round_id AND p.status = 'reported') AS reported "
        "FROM rounds r WHERE task_id = ? ORDER BY round_id DESC LIMIT ?",
        (row["task_id"], rounds_per_task),
    )
    history = _history(store, row["task_id"], history_per_task)
    closed = store.query(
        "SELECT COUNT(*) FILTER (WHERE phase = 'committed') AS committed,"
        " COUNT(*) FILTER (WHERE phase = 'failed') AS failed FROM rounds WHERE task_id = ?",
        (row["task_id"],),
    )[0]
    return {
        "task": row["task_id"],
        "status": row["status"],
        "version": row["version"],
        "rounds_total": config.get("rounds"),
        "model": config.get("model"),
        "strategy": config.get("strategy"),
        "latest_metrics": history[-1]["metrics"] if history else {},
        "rounds_committed": closed["committed"],
        "attempts_failed": closed["failed"],
        "stages": list(_stages(config)),
        "secagg": bool(config.get("secagg")),
        "dp": bool(config.get("dp_noise")),
        "live": _live(config, rounds[0]) if rounds else None,
        "rounds": [_round(r) for r in rounds],
        "history": history,
    }


def _history(store: Store, task_id: str, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` committed versions, oldest first (version 0, the initial model, has no metrics)."""
    rows = store.query(
        "SELECT version, created_at, metrics_json FROM versions WHERE task_id = ? AND version > 0"
        " ORDER BY version DESC LIMIT ?",
        (task_id, count),
    )
    return [
        {"version": r["version"], "committed_at": r["created_at"], "metrics": json.loads(r["metrics_json"])}
        for r in reversed(rows)
    ]


def _stages(config: dict[str, Any]) -> tuple[str, ...]:
    return SECURE_STAGES if config.get("secagg") else PLAIN_STAGES


def _live(config: dict[str, Any], row: Any) -> dict[str, Any] | None:
    """The open round, with the latest its current stage ends.

    Only the round's opening time is stored, so the deadline counts every earlier stage at its
    limit: exact for selection and for the training deadline the clients were given; later
    when selection waited past its timeout for ``min_clients``. Aggregate and commit have none.
    """
    if row["phase"] in CLOSED_PHASES:
        return None
    limits = {
        "select": config.get("select_timeout_s", 0.0),
        "advertise": config.get("secagg_timeout_s", 0.0),
        "share": config.get("secagg_timeout_s", 0.0),
        "train": config.get("train_deadline_s", 0.0),
        "unmask": config.get("secagg_timeout_s", 0.0),
    }
    stages = _stages(config)
    deadline = None
    if row["phase"] in limits and row["phase"] in stages:
        walked = stages[: stages.index(row["phase"]) + 1]
        deadline = row["opened_at"] + sum(limits[s] for s in walked)
    return {
        "round_id": row["round_id"],
        "round": row["number"],
        "attempt": row["attempt"],
        "phase": row["phase"],
        "opened_at": row["opened_at"],
        "deadline": deadline,
    }


def _round(row: Any) -> dict[str, Any]:
    metrics = json.loads(row["metrics_json"]) if row["metrics_json"] else {}
    return {
        "round_id": row["round_id"],
        "round": row["number"],
        "attempt": row["attempt"],
        "phase": row["phase"],
        "committed_version": row["number"] if row["phase"] == "committed" else None,
        "selected": row["selected"],
        "reported": row["reported"],
        "reason": row["reason"],
        "metrics": metrics,
        "opened_at": row["opened_at"],
        "closed_at": row["closed_at"],
    }
