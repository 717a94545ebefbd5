"""The dashboard: ``/api/status`` over a real gateway and daemon, the status document it carries,
and the page itself in a real headless Chromium following a federation as its rounds run.

The browser tests need Debian's chromium and Python ``playwright`` (never ``playwright
install``): without them they skip, unless FEDGE_REQUIRE_DATASETS=1 (tests/conftest.py's rule),
where they fail. Their screenshots land in tests/browser/artifacts/.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from fedge.client.agent import Agent, LocalTrainer, default_platform
from fedge.client.transport import GrpcTransport
from fedge.server.config import ServerSettings
from fedge.server.daemon import Running, start
from fedge.server.gateway import Gateway, GatewayThread
from fedge.server.status import status
from fedge.server.store import Store
from fedge.shared import data
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import admin_pb2_grpc
from fedge.shared.training import TrainConfig
from tests.browser.chromium import chromium

from .conftest import small_task

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "client" / "js" / "dashboard"
ARTIFACTS = REPO / "tests" / "browser" / "artifacts"

BROWSER_PLATFORMS = ["browser-chromium/webgl", "browser-chromium/wasm"]


@dataclass
class Web:
    """A gateway serving a web root that holds the dashboard, in front of a daemon."""

    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        host, port = self.address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=15)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def web_root(tmp_path: Path) -> Path:
    """What the build gives the gateway: the web client's index.html, and dashboard/ copied verbatim."""
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>fedge</title>")
    shutil.copytree(DASHBOARD, root / "dashboard")
    return root


@pytest.fixture
def web(service, tmp_path) -> Iterator[Web]:
    thread = GatewayThread(Gateway(service.running.address, port=0, static_dir=web_root(tmp_path)))
    thread.start()
    try:
        yield Web(thread.address)
    finally:
        thread.stop()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def api_status(web: Web, credential: str) -> dict[str, Any]:
    code, _, body = web.get("/api/status", **bearer(credential))
    assert code == 200, body
    return json.loads(body)


# -- /api/status -------------------------------------------------------------------------------
def test_status_without_a_credential_is_401_and_says_what_to_send(web):
    code, headers, body = web.get("/api/status")
    assert code == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body.decode().strip() == (
        "expected 'Authorization: Bearer <admin credential>' (the coordinator's <data_dir>/admin.token), got none"
    )


def test_status_with_another_scheme_is_401(web, service):
    code, _, body = web.get("/api/status", Authorization=f"Basic {service.admin_credential}")
    assert code == 401
    assert body.decode().strip().endswith("got a header of another scheme")


def test_status_with_a_wrong_credential_is_401(web, service):
    code, _, body = web.get("/api/status", **bearer(service.admin_credential + "x"))
    assert code == 401
    assert body.decode().strip() == (
        "the admin credential is wrong: expected the one in the coordinator's <data_dir>/admin.token"
    )


def test_a_client_credential_is_not_an_admin_credential(web, service):
    _, client_credential = service.enroll_as()
    code, _, _ = web.get("/api/status", **bearer(client_credential))
    assert code == 401


def test_status_with_the_admin_credential_is_the_coordinators_document(web, service):
    code, headers, body = web.get("/api/status", **bearer(service.admin_credential))
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    document = json.loads(body)
    grpc_document = json.loads(
        service.admin.GetStatus(apb.GetStatusRequest(admin_credential=service.admin_credential)).status_json
    )
    assert [t["task"] for t in document["tasks"]] == [t["task"] for t in grpc_document["tasks"]] == ["t"]
    task = document["tasks"][0]
    assert (task["version"], task["rounds_total"], task["stages"]) == (0, 3, ["select", "train", "aggregate", "commit"])
    live = task["live"]
    assert (live["round"], live["attempt"], live["phase"]) == (1, 1, "select")
    assert live["deadline"] == pytest.approx(live["opened_at"] + 0.5)  # small_task's select_timeout_s


def test_status_after_a_round_has_its_version_in_the_history(web, service):
    members = [service.enroll_as() for _ in range(2)]
    assignments = [(credential, service.assignment(credential)) for _, credential in members]  # the cohort is full
    for credential, assignment in assignments:
        service.upload(credential, assignment, metrics={"train_loss": 0.5})

    task = api_status(web, service.admin_credential)["tasks"][0]
    assert task["version"] == 1
    assert [(h["version"], h["metrics"]["clients"], h["metrics"]["train_loss"]) for h in task["history"]] == [
        (1, 2, 0.5)
    ]
    committed = task["rounds"][1]
    assert (committed["round"], committed["phase"], committed["selected"], committed["reported"]) == (
        1, "committed", 2, 2,
    )  # fmt: skip
    assert committed["closed_at"] >= committed["opened_at"]
    assert (task["live"]["round"], task["live"]["phase"]) == (2, "select")


def test_status_when_the_coordinator_is_away_is_503(tmp_path):
    thread = GatewayThread(Gateway("127.0.0.1:1", port=0, static_dir=web_root(tmp_path)))
    thread.start()
    try:
        code, _, body = Web(thread.address).get("/api/status", **bearer("fedge-admin-anything"))
    finally:
        thread.stop()
    assert code == 503
    assert body.decode().startswith("the coordinator did not answer: ")


# -- the document: the live round's stage deadline -------------------------------------------------
@pytest.mark.parametrize(
    ("secagg", "phase", "limits"),
    [
        (False, "select", 2.0),
        (False, "train", 2.0 + 10.0),
        (True, "share", 2.0 + 3.0 + 3.0),
        (True, "unmask", 2.0 + 3.0 + 3.0 + 10.0 + 3.0),
        (False, "aggregate", None),
    ],
)
def test_the_live_stage_ends_by_the_limits_of_the_stages_walked(tmp_path, secagg, phase, limits):
    store = Store(tmp_path / "coordinator")
    config = {"rounds": 3, "secagg": secagg, "select_timeout_s": 2.0, "secagg_timeout_s": 3.0, "train_deadline_s": 10.0}
    store.ensure_task("t", config, {}, [np.zeros(2, np.float32)])
    round_id, _ = store.open_round("t", 1)
    store.set_phase(round_id, phase)

    live = status(store)["tasks"][0]["live"]
    store.close()
    assert live["phase"] == phase
    assert live["deadline"] == (None if limits is None else pytest.approx(live["opened_at"] + limits))


def test_a_closed_round_is_not_live(tmp_path):
    store = Store(tmp_path / "coordinator")
    store.ensure_task("t", {"rounds": 3}, {}, [np.zeros(2, np.float32)])
    round_id, _ = store.open_round("t", 1)
    store.set_phase(round_id, "failed", "0 of 2 selected clients reported, 1 needed")

    task = status(store)["tasks"][0]
    store.close()
    assert task["live"] is None
    assert task["rounds"][0]["reason"] == "0 of 2 selected clients reported, 1 needed"


# -- the page, in a real Chromium ---------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"the page threw: {errors}"


def screenshot(page: Any, name: str) -> None:
    """Save the page for a human to look at, after checking that no missing value leaked into it."""
    text = page.inner_text("body")
    assert "null" not in text and "undefined" not in text and "NaN" not in text, text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_page_asks_for_the_credential_and_refuses_a_wrong_one(page, web, service):
    from playwright.sync_api import expect

    page.goto(f"{web.url}/dashboard/")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#board")).to_be_hidden()

    page.fill("#credential", "fedge-admin-wrong")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-reason")).to_contain_text("the admin credential is wrong")

    page.fill("#credential", service.admin_credential)
    page.click("#login button[type=submit]")
    expect(page.locator("article.task[data-task=t]")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('fedge.admin')") == service.admin_credential
    screenshot(page, "dashboard-signed-in.png")


# -- a federation the page follows ---------------------------------------------------------------
ROUNDS = 3


@dataclass
class Federation:
    """A daemon running a small secure, differentially private task, evaluated on held-out data and
    published at every version: every part of the page has something to show."""

    running: Running
    web: Web
    splits: data.Splits

    @property
    def admin_credential(self) -> str:
        return self.running.coordinator.admin_credential

    def tokens(self, count: int) -> list[str]:
        with grpc.insecure_channel(self.running.address) as channel:
            request = apb.CreateTokensRequest(admin_credential=self.admin_credential, count=count)
            return list(admin_pb2_grpc.AdminStub(channel).CreateTokens(request).tokens)


@contextmanager
def serve(tmp_path: Path, **task: Any) -> Iterator[Federation]:
    """A daemon and its gateway running one task on synthetic IMU windows, ROUNDS rounds of 3 clients."""
    splits = data.load("synthetic-imu")
    config = small_task(
        input_shape=splits.train.sample_shape, labels=splits.train.labels, rounds=ROUNDS, clients_per_round=3,
        min_clients=3, select_timeout_s=5.0, train_deadline_s=30.0, evaluate_on="synthetic-imu", **task,
    )  # fmt: skip
    settings = ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path / "coordinator")
    running = start(settings, [config])
    thread = GatewayThread(Gateway(running.address, port=0, static_dir=web_root(tmp_path)))
    try:
        thread.start()
        yield Federation(running, Web(thread.address), splits)
    finally:
        thread.stop()
        running.stop(grace=0.5)


@pytest.fixture
def federation(tmp_path) -> Iterator[Federation]:
    with serve(tmp_path, name="har", publish="every", publish_every=1, secagg=True, dp_clip=1.0, dp_noise=0.1) as f:
        yield f


def run_agents(federation: Federation, platforms: list[str], stop: threading.Event) -> list[threading.Thread]:
    """One agent per platform, each on its share of the training split, in its own thread over gRPC."""
    shares = data.partition(federation.splits.train, "iid", len(platforms), seed=0)
    tokens, threads = federation.tokens(len(platforms)), []
    for index, (token, platform, share) in enumerate(zip(tokens, platforms, shares, strict=True)):
        transport = GrpcTransport(federation.running.address)
        credential = Agent.enroll(transport, token, name=f"agent-{index}", platform=platform)
        client = federation.splits.train.subset(share)
        agent = Agent(transport, credential, LocalTrainer(client.x, client.y), platform=platform, seed=index)
        thread = threading.Thread(target=agent.run, args=(stop, True), daemon=True)
        thread.start()
        threads.append(thread)
    return threads


@pytest.mark.slow
def test_the_page_follows_rounds_as_they_run(page, federation):
    from playwright.sync_api import expect

    page.goto(f"{federation.web.url}/dashboard/#admin={federation.admin_credential}")
    task = page.locator("article.task[data-task=har]")
    expect(task.locator(".stage.live")).to_have_attribute("data-stage", "select")
    expect(task.locator("[data-progress]")).to_have_attribute("data-progress", f"0/{ROUNDS}")
    assert "admin=" not in page.url  # the credential left the address bar
    page.evaluate("window.loadedOnce = true")

    stop = threading.Event()
    started = time.monotonic()
    agents = run_agents(federation, [default_platform(), *BROWSER_PLATFORMS], stop)
    try:
        expect(task.locator("[data-progress]")).to_have_attribute("data-progress", f"{ROUNDS}/{ROUNDS}", timeout=90_000)
        expect(page.locator("tr.model")).to_have_count(ROUNDS, timeout=60_000)  # publishing follows the commits
    finally:
        stop.set()
        for agent in agents:
            agent.join(timeout=10)
    print(f"{ROUNDS} rounds and their publishing, as the page saw them: {time.monotonic() - started:.1f} s")

    assert page.evaluate("window.loadedOnce") is True  # updated in place, never reloaded
    expect(task.locator(".stage.done")).to_have_count(7)  # the task completed: every secure stage walked
    expect(task.locator("tr.round.committed")).to_have_count(ROUNDS)
    accuracy = task.locator("figure[data-chart=accuracy] g[data-series=held-out] circle.point")
    expect(accuracy).to_have_count(ROUNDS)
    expect(task.locator("figure[data-chart=loss] g[data-series=train] circle.point")).to_have_count(ROUNDS)
    expect(task.locator("figure[data-chart^=privacy] circle.point")).to_have_count(ROUNDS)

    groups = page.locator("tr.client-group")
    expect(groups).to_have_count(3)  # one per platform and backend
    for platform, backend in [(default_platform(), "–"), *(p.split("/") for p in BROWSER_PLATFORMS)]:
        group = page.locator(f"tr.client-group[data-platform='{platform}'][data-backend='{backend}']")
        expect(group.locator("td")).to_have_text([platform, backend, "1", "1"])
    expect(page.locator("#clients .summary")).to_contain_text("3 enrolled, 3 seen in the last minute")

    newest = page.locator(f"tr.model[data-version='{ROUNDS}'][data-variant=fp32] a", has_text="model.onnx")
    href = newest.get_attribute("href")
    assert href == f"/models/har/{ROUNDS}/model.onnx"
    model = page.request.get(f"{federation.web.url}{href}")
    assert model.status == 200 and len(model.body()) > 1000
    screenshot(page, "dashboard.png")


@pytest.mark.slow
def test_the_page_plots_the_devices_score_of_the_last_version_from_the_scoring_round(page, tmp_path):
    from playwright.sync_api import expect

    by_devices = {"publish": "best", "publish_metric": "eval_accuracy", "publish_int8": False}
    with serve(tmp_path, name="scored", training=TrainConfig(batch_size=16, holdout=0.25), **by_devices) as federation:
        page.goto(f"{federation.web.url}/dashboard/#admin={federation.admin_credential}")
        task = page.locator("article.task[data-task=scored]")
        stop = threading.Event()
        agents = run_agents(federation, [default_platform()] * 3, stop)
        try:
            expect(task.locator("tr.round.scored")).to_have_count(1, timeout=90_000)
        finally:
            stop.set()
            for agent in agents:
                agent.join(timeout=10)
        # round N's devices score version N − 1; the scoring round after the last commit scores version ROUNDS
        scores = task.locator("figure[data-chart=accuracy] g[data-series='on devices'] circle.point title")
        expect(scores).to_have_count(ROUNDS + 1)
        expect(scores.last).to_contain_text(f"on devices, version {ROUNDS}: ")
        note = re.compile(rf"devices scored version {ROUNDS}: [01]\.\d{{4}}$")
        expect(task.locator("tr.round.scored td.note")).to_have_text(note)
        screenshot(page, "dashboard-scoring-round.png")


# -- /metrics: the same document, for Prometheus -----------------------------------------------
def scrape(web: Web, credential: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics scrape, parsed by prometheus_client's own parser: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    code, headers, body = web.get("/metrics", **bearer(credential))
    assert code == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_metrics_ask_for_the_admin_credential(web, service):
    assert web.get("/metrics")[0] == 401
    assert web.get("/metrics", **bearer(service.admin_credential + "x"))[0] == 401
    client_credential = service.enroll()
    assert web.get("/metrics", **bearer(client_credential))[0] == 401


def test_metrics_tell_what_the_store_holds(web, service):
    from websockets.sync.client import connect

    members = [service.enroll_as() for _ in range(3)]
    service.revoke(members[2][0])
    service.tokens(2)  # unused
    for credential, assignment in [(c, service.assignment(c)) for _, c in members[:2]]:
        service.upload(credential, assignment, metrics={"train_loss": 0.5})
    with connect(f"ws://{web.address}/ws", compression=None):
        samples = scrape(web, service.admin_credential)

    task = (("task", "t"),)
    failed = len(service.running.coordinator.store.query("SELECT 1 FROM rounds WHERE phase = 'failed'"))
    assert samples[("fedge_task_version", task)] == 1
    assert samples[("fedge_task_rounds_target", task)] == 3
    assert samples[("fedge_task_rounds_committed_total", task)] == 1
    assert samples[("fedge_task_round_attempts_failed_total", task)] == failed
    assert samples[("fedge_task_metric", (("metric", "train_loss"), *task))] == 0.5
    assert samples[("fedge_task_metric", (("metric", "clients"), *task))] == 2
    info = [labels for name, labels in samples if name == "fedge_task_info"]
    assert dict(info[0]) == {"task": "t", "model": "mlp", "strategy": "fedavg", "status": "running",
                             "secagg": "false", "dp": "false"}  # fmt: skip
    assert samples[("fedge_round_phase", (("phase", "select"), *task))] == 1  # round 2 is open, waiting
    assert samples[("fedge_clients", (("state", "enrolled"),))] == 2
    assert samples[("fedge_clients", (("state", "revoked"),))] == 1
    assert samples[("fedge_clients_active", ())] == 2
    assert samples[("fedge_tokens_unused", ())] == 2
    assert samples[("fedge_gateway_sockets", ())] == 1
    assert samples[("fedge_server_start_time_seconds", ())] == service.running.coordinator.about["started"]
    assert not any(name == "fedge_server_certificate_expiry_time_seconds" for name, _ in samples)  # plaintext
