"""``GET /metrics``: the coordinator's state for Prometheus, from the same status document as the dashboard.

    Prometheus ──GET /metrics, Authorization: Bearer <admin credential>──► gateway
      ──Admin.GetStatus──► coordinator (server/status.py) ──► text exposition (prometheus_client)

The document names clients, so the route asks for the admin credential exactly as /api/status
does (Prometheus sends it with ``authorization: {credentials_file: admin.token}``). Every value
is read at scrape time from the store, so the counters survive a restart of the daemon or of
the gateway, and a second gateway reports the same figures. The gateway adds its own open
sockets. Names and labels are documented in docs/monitoring.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fedge.server.gateway.dashboard import AdminStatus
from fedge.server.gateway.http import HttpRequest, HttpResponse

ACTIVE_WINDOW_S = 300.0  # a client seen this recently counts as active


class Metrics:
    """The /metrics route: ``status`` fetches the document, ``sockets`` counts the gateway's open ones."""

    def __init__(self, status: AdminStatus, sockets: Callable[[], int]) -> None:
        self.status, self.sockets = status, sockets

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        document = await self.status.fetch(request)
        if isinstance(document, HttpResponse):
            return document
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        except ImportError:
            return HttpResponse.text(501, "/metrics needs prometheus-client: pip install 'fedge[server]'")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(json.loads(document), self.sockets()))
        return HttpResponse(200, generate_latest(registry), CONTENT_TYPE_LATEST, {"Cache-Control": "no-store"})


class _Collector:
    """One scrape's metric families, built from one status document."""

    def __init__(self, document: dict[str, Any], sockets: int) -> None:
        self.document, self.sockets = document, sockets

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        tasks = self.document["tasks"]
        info = InfoMetricFamily("fedge_task", "A task: its model, strategy, status and privacy", labels=["task"])
        version = GaugeMetricFamily("fedge_task_version", "Latest committed model version", labels=["task"])
        target = GaugeMetricFamily("fedge_task_rounds_target", "Rounds the task trains in all", labels=["task"])
        committed = CounterMetricFamily("fedge_task_rounds_committed", "Rounds committed", labels=["task"])
        failed = CounterMetricFamily("fedge_task_round_attempts_failed", "Round attempts retried", labels=["task"])
        metric = GaugeMetricFamily(
            "fedge_task_metric", "The latest committed version's metrics (accuracy, loss, epsilon, ...)",
            labels=["task", "metric"],
        )  # fmt: skip
        live = GaugeMetricFamily("fedge_round_phase", "1 for the open round's phase", labels=["task", "phase"])
        selected = GaugeMetricFamily("fedge_round_selected", "Clients selected for the open round", labels=["task"])
        reported = GaugeMetricFamily("fedge_round_reported", "Clients that reported in the open round", labels=["task"])
        for task in tasks:
            name = task["task"]
            info.add_metric([name], _task_info(task))
            version.add_metric([name], task["version"])
            target.add_metric([name], task["rounds_total"] or 0)
            committed.add_metric([name], task["rounds_committed"])
            failed.add_metric([name], task["attempts_failed"])
            for key, value in sorted(task["latest_metrics"].items()):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metric.add_metric([name, key], value)
            if task["live"] is not None:
                live.add_metric([name, task["live"]["phase"]], 1)
                row = task["rounds"][0]
                selected.add_metric([name], row["selected"])
                reported.add_metric([name], row["reported"])
        yield from (info, version, target, committed, failed, metric, live, selected, reported)
        yield from self._clients()
        yield from self._server()

    def _server(self) -> Iterator[Any]:
        """When the daemon started and, with TLS, when its certificate expires (alert on it)."""
        from prometheus_client.core import GaugeMetricFamily

        about = self.document.get("server") or {}
        if "started" in about:
            started = about["started"]
            yield GaugeMetricFamily("fedge_server_start_time_seconds", "When the daemon started", value=started)
        if about.get("certificate_expires") is not None:
            yield GaugeMetricFamily(
                "fedge_server_certificate_expiry_time_seconds",
                "When the daemon's TLS certificate expires (Unix time)",
                value=about["certificate_expires"],
            )

    def _clients(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        clients, now = self.document["clients"], self.document["now"]
        revoked = sum(1 for c in clients if c["revoked"])
        active = sum(1 for c in clients if not c["revoked"] and now - (c["last_seen"] or 0) <= ACTIVE_WINDOW_S)
        enrolled = GaugeMetricFamily("fedge_clients", "Enrolled clients, by state", labels=["state"])
        enrolled.add_metric(["enrolled"], len(clients) - revoked)
        enrolled.add_metric(["revoked"], revoked)
        yield enrolled
        yield GaugeMetricFamily(
            "fedge_clients_active", f"Clients seen in the last {ACTIVE_WINDOW_S:.0f} s, not revoked", value=active
        )
        unused = self.document["unused_tokens"]
        yield GaugeMetricFamily("fedge_tokens_unused", "Enrolment tokens not used yet", value=unused)
        yield GaugeMetricFamily("fedge_gateway_sockets", "WebSockets open on this gateway", value=self.sockets)


def _task_info(task: dict[str, Any]) -> dict[str, str]:
    return {
        "model": str(task["model"]),
        "strategy": str(task["strategy"]),
        "status": str(task["status"]),
        "secagg": str(task["secagg"]).lower(),
        "dp": str(task["dp"]).lower(),
    }
