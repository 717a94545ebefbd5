"""What ``fedge status`` shows: tasks, their rounds (with the version each committed), clients."""

from __future__ import annotations

import json
from typing import Any

from fedge.server.store import Store


def status(store: Store, rounds_per_task: int = 10) -> dict[str, Any]:
    tasks = []
    for row in store.query("SELECT task_id, version, status, config_json FROM tasks ORDER BY task_id"):
        config = json.loads(row["config_json"])
        rounds = store.query(
            "SELECT round_id, number, attempt, phase, reason, metrics_json, "
            "(SELECT COUNT(*) FROM participants p WHERE p.round_id = r.round_id) AS selected, "
            "(SELECT COUNT(*) FROM participants p WHERE p.round_id = r.round_id AND p.status = 'reported') AS reported "
            "FROM rounds r WHERE task_id = ? ORDER BY round_id DESC LIMIT ?",
            (row["task_id"], rounds_per_task),
        )
        latest = store.query(
            "SELECT metrics_json FROM versions WHERE task_id = ? ORDER BY version DESC LIMIT 1", (row["task_id"],)
        )
        tasks.append(
            {
                "task": row["task_id"],
                "status": row["status"],
                "version": row["version"],
                "rounds_total": config.get("rounds"),
                "model": config.get("model"),
                "strategy": config.get("strategy"),
                "latest_metrics": json.loads(latest[0]["metrics_json"]) if latest else {},
                "rounds": [_round(r) for r in rounds],
            }
        )
    clients = [
        dict(r)
        for r in store.query(
            "SELECT client_id, platform, name, enrolled_at, last_seen, revoked_at IS NOT NULL AS revoked"
            " FROM clients ORDER BY enrolled_at"
        )
    ]
    tokens = store.query("SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NULL AND revoked_at IS NULL")
    return {"tasks": tasks, "clients": clients, "unused_tokens": tokens[0]["n"]}


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
    }
