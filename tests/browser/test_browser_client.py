"""A browser and two Python agents train together with secure aggregation, end to end.

A real coordinator with its web gateway serves the built page (client/js/dist); headless
Debian Chromium, driven by Playwright, opens the enrolment link, loads a `fedge data split`
folder's files, and trains on TF.js's wasm backend; two `fedge client` processes train on
their own folders. Every round must commit with all three reports, the browser's among them,
the coordinator must list it as `browser-chromium/wasm`, and the held-out accuracy must show
that the masks cancelled (one wrong pairwise mask sums to noise: accuracy 0.25). Screenshots of the page (and of
the dashboard, when one is built) go to $FEDGE_ARTIFACTS or tests/browser/artifacts/, with both
pages at a phone's width, where neither may scroll sideways.

The first run serves TLS (a self-signed certificate): the page comes over https:// and talks wss://,
the agents dial gRPC over TLS. The same runs again, in plaintext, with distributed DP: every device,
the browser too, checks the coordinator's noise plan and adds discrete Gaussian noise to its
quantised update before masking.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedge.server.config import ServerSettings
from fedge.server.daemon import Running, start
from fedge.server.gateway import default_static_dir
from fedge.shared import registry
from fedge.shared.onnx import runtime
from fedge.shared.tls import create_certificate
from fedge.simulation.loopback import free_port, start_agent
from tests.browser.chromium import chromium, missing
from tests.cohort import ROUNDS, committed_rounds, data_folders, reporters, secure_task

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("FEDGE_ARTIFACTS") or REPO / "tests" / "browser" / "artifacts")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web_root() -> Path:
    """The built page, rebuilt first when a source is newer (what scripts/setup.sh does)."""
    root = default_static_dir()
    assert root is not None, "default_static_dir() found no web client in this checkout"
    sources = REPO / "client" / "js"
    newest = max(p.stat().st_mtime for d in ("src", "web") for p in (sources / d).rglob("*") if p.is_file())
    index = root / "index.html"
    if not index.is_file() or index.stat().st_mtime < newest:
        if shutil.which("npm") is None or not (sources / "node_modules").is_dir():
            missing("the web client is not built and npm or client/js/node_modules is missing")
        subprocess.run(["npm", "run", "build", "--prefix", str(sources)], check=True, capture_output=True)
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@dataclass
class Served:
    running: Running
    scheme: str  # of the page: https with TLS
    agent_options: list[str]  # what `fedge client` needs to reach the daemon

    @property
    def page_url(self) -> str:
        return f"{self.scheme}://{self.running.gateway.address}"


@pytest.fixture(params=[False, True], ids=["secagg-tls", "secagg-dp"])
def served(request: pytest.FixtureRequest, tmp_path: Path, web_root: Path) -> Iterator[Served]:
    dp = request.param
    tls: dict[str, str] = {}
    if not dp:
        tls = {"tls_cert": str(tmp_path / "cert.pem"), "tls_key": str(tmp_path / "key.pem")}
        create_certificate(Path(tls["tls_cert"]), Path(tls["tls_key"]), ["localhost", "127.0.0.1"])
    settings = ServerSettings(port=0, http_port=free_port(), data_dir=tmp_path / "coordinator", **tls)
    task = replace(secure_task(dp=dp), publish="every", publish_every=ROUNDS, publish_int8=True)  # the last version
    running = start(settings, [task], gateway=True, static_dir=web_root)
    try:
        yield Served(running, "https" if tls else "http", ["--tls-ca", tls["tls_cert"]] if tls else [])
    finally:
        running.stop()


def wait_for_rounds(running: Running, page: Any, agents: list[subprocess.Popen], logs: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while committed_rounds(running) < ROUNDS:
        if time.monotonic() > deadline:
            status = page.locator("#status").text_content()
            pytest.fail(f"{committed_rounds(running)}/{ROUNDS} rounds committed; the page says {status!r}")
        crashed = [a for a in agents if a.poll() not in (None, 0)]
        assert not crashed, f"a fedge client exited with {crashed[0].returncode}; see {logs}"
        page.wait_for_timeout(250)


def test_browser_and_python_agents_complete_secure_rounds(served: Served, browser: Any, tmp_path: Path) -> None:
    server = served.running
    started = time.monotonic()
    folders = data_folders(tmp_path / "clients")
    samples = len(np.load(folders[0] / "part-0000.npz")["y"])
    store = server.coordinator.store
    dp = server.coordinator.tasks["har"].task.dp_noise > 0
    browser_token, *agent_tokens = store.create_tokens(3)
    agents = [
        start_agent(server.address, token, folder, tmp_path / f"agent-{i}.log", seed=i, options=served.agent_options)
        for i, (token, folder) in enumerate(zip(agent_tokens, folders[1:], strict=True))
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the self-signed certificate is accepted as a user accepts it once; the page is a secure context
    page = browser.new_page(viewport={"width": 1000, "height": 1300}, ignore_https_errors=True)
    try:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        key = server.coordinator.signing_key.public_key().public_bytes().hex()  # as `fedge token create --link`
        page.goto(f"{served.page_url}/?backend=wasm#token={browser_token}&key={key}")
        page.wait_for_selector("#joined:not([hidden])", timeout=30_000)
        assert "token=" not in page.url, "the used token stays out of the address bar and history"
        assert page.input_value("#model-key") == key, "the link's model-signing key is pinned"
        assert page.evaluate("[location.protocol, isSecureContext]") == [f"{served.scheme}:", True]
        floor = "0.005" if dp else "0"  # the owner's DP noise floor: under the plan's 0.01, so the browser takes part
        page.fill("#min-dp-noise", floor)
        page.dispatch_event("#min-dp-noise", "change")
        assert page.locator("#floor-message").text_content().startswith("kept")
        page.set_input_files("#files", [str(folders[0] / "meta.json"), str(folders[0] / "part-0000.npz")])
        page.wait_for_function("document.querySelector('#samples').textContent.includes('samples of (50, 6)')")

        wait_for_rounds(server, page, agents, tmp_path, timeout_s=150)
        page.wait_for_function(f"Number(document.querySelector('#rounds-count').textContent) >= {ROUNDS}")
        page.screenshot(path=str(ARTIFACTS / "browser-client.png"), full_page=True)
        sent = page.locator("#sent li").all_text_contents()
        joined_as = page.locator("#client-id").text_content()
        page.reload()  # the credential and the samples were kept in this browser
        page.wait_for_selector("#joined:not([hidden])", timeout=30_000)
        assert page.locator("#client-id").text_content() == joined_as
        assert f"{samples} samples of (50, 6)" in page.locator("#samples").text_content()
        assert page.input_value("#min-dp-noise") == floor  # kept in this browser
        ran = run_published_model(page, served, folders[0])
        screenshot_dashboard(browser, served)
    finally:
        page.close()
        for agent in agents:
            agent.terminate()
            agent.wait(10)

    assert not errors, errors
    by_round = reporters(server)
    assert sorted(by_round) == list(range(1, ROUNDS + 1))
    for number, platforms in by_round.items():
        assert len(platforms) == 3, (number, platforms)
        assert "browser-chromium/wasm" in platforms, (number, platforms)
    parameters = 50 * 6 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4
    assert len(sent) == ROUNDS
    assert all(f"{parameters:,} masked uint32 values" in line for line in sent), sent
    assert all(("with on-device DP noise (multiplier 0.01)" in line) == dp for line in sent), sent
    assert store.query("SELECT status FROM tasks WHERE task_id = 'har'")[0]["status"] == "completed"
    rows = store.query("SELECT metrics_json FROM versions WHERE version > 0 ORDER BY version")
    history = [json.loads(r["metrics_json"]) for r in rows]
    print("held-out accuracy by version:", [round(m["accuracy"], 3) for m in history])
    assert history[-1]["accuracy"] > 0.7, history  # 4 classes: chance is 0.25
    if dp:
        assert all(m["epsilon"] > 0 for m in history), history  # accounted by the coordinator
    assert ran >= history[-1]["accuracy"] - 0.15, (ran, history[-1])  # the model the rounds trained
    print(f"{ROUNDS} secure rounds with a browser in {time.monotonic() - started:.1f} s")


def run_published_model(page: Any, served: Served, folder: Path) -> float:
    """The page runs the published model on its samples as ONNX Runtime does; another key is refused."""
    coordinator = served.running.coordinator
    pinned = page.input_value("#model-key")  # the join link's, still there after the reload
    assert pinned == coordinator.signing_key.public_key().public_bytes().hex()
    page.fill("#model-key", registry.SigningKey.generate().public_key().public_bytes().hex())
    page.click("#model-form button")
    page.wait_for_selector("#model-status[data-state=refused]", timeout=30_000)
    assert "signature does not verify" in page.locator("#model-status").text_content()
    assert page.locator("#model-predictions li").count() == 0  # nothing ran

    page.fill("#model-key", pinned)
    page.click("#model-form button")
    page.wait_for_selector("#model-status[data-state=done]", timeout=60_000)
    status = page.locator("#model-status").text_content()
    folder_of = registry.version_folder(coordinator.registry_root, "har", ROUNDS)
    data = np.load(folder / "part-0000.npz")
    onnx = runtime.probabilities(runtime.session((folder_of / registry.MODEL).read_bytes()), data["x"])
    accuracy = float((onnx.argmax(axis=1) == data["y"]).mean())
    assert f"har version {ROUNDS} (signature verified)" in status, status
    assert f"{100 * accuracy:.1f}% of this device's {len(data['y'])} samples right" in status, (status, accuracy)
    assert page.locator("#model-predictions li").count() == 5
    page.screenshot(path=str(ARTIFACTS / "browser-model.png"), full_page=True)
    return accuracy


def screenshot_dashboard(browser: Any, served: Served) -> None:
    """The operator's view of the same federation, when the dashboard is part of the build."""
    root = default_static_dir()
    if root is None or not (root / "dashboard" / "index.html").is_file():
        return
    page = browser.new_page(viewport={"width": 1200, "height": 1400}, ignore_https_errors=True)
    try:
        page.goto(f"{served.page_url}/dashboard/#admin={served.running.coordinator.admin_credential}")
        page.wait_for_function("document.body.innerText.includes('browser-chromium')", timeout=15_000)
        page.wait_for_timeout(500)  # let the charts settle
        assert f"{served.running.address} (" in page.inner_text("#connection")  # the daemon's line
    finally:  # what it showed, also when it did not list the browser
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.close()


PHONE = {"width": 360, "height": 740}


def test_the_page_and_the_dashboard_fit_a_phone_screen(browser: Any, tmp_path: Path, web_root: Path) -> None:
    """No sideways scrolling at a phone's width: long fields and options shrink, and the dashboard's
    wide tables scroll inside their panels (a round is open, so its table of rounds is there)."""
    settings = ServerSettings(port=0, http_port=free_port(), data_dir=tmp_path / "coordinator")
    running = start(settings, [secure_task()], gateway=True, static_dir=web_root)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport=PHONE)
    try:
        page.goto(f"http://{running.gateway.address}/")
        page.click("#record summary")  # the recording form too: a long source name, the label fields
        page.screenshot(path=str(ARTIFACTS / "phone-page.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.goto(f"http://{running.gateway.address}/dashboard/#admin={running.coordinator.admin_credential}")
        page.wait_for_selector("table.rounds", timeout=15_000)
        page.screenshot(path=str(ARTIFACTS / "phone-dashboard.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate("document.querySelector('table.rounds').scrollWidth") > PHONE["width"] / 2
    finally:
        page.close()
        running.stop()


def test_the_page_joins_a_coordinator_set_up_afresh_with_the_new_link(
    browser: Any, tmp_path: Path, web_root: Path
) -> None:
    """The page keeps its credential; the coordinator behind the same address starts over with a
    new store and hands out a new link. Opening it, the page finds its credential unknown and
    joins with the link's token, as `fedge client` does, instead of asking for a token again."""
    task = replace(secure_task(), secagg=False, rounds=1, clients_per_round=1, min_clients=1)
    (folder, *_) = data_folders(tmp_path / "clients")
    http_port, joined_as = free_port(), []
    page = browser.new_page()
    try:
        for data in ("first", "second"):
            settings = ServerSettings(port=0, http_port=http_port, data_dir=tmp_path / data)
            running = start(settings, [task], gateway=True, static_dir=web_root)
            try:
                (token,) = running.coordinator.store.create_tokens(1)
                page.goto("about:blank")  # the link opened afresh (a new fragment alone would not load the page)
                page.goto(f"http://{running.gateway.address}/?backend=wasm#token={token}")
                page.wait_for_selector("#joined:not([hidden])", timeout=30_000)
                if not joined_as:  # the samples stay in this browser for the second coordinator
                    page.set_input_files("#files", [str(folder / "meta.json"), str(folder / "part-0000.npz")])
                deadline = time.monotonic() + 60
                while committed_rounds(running) < 1:
                    status = page.locator("#status").text_content()
                    reason = page.locator("#join-reason").text_content()
                    assert time.monotonic() < deadline, f"no round committed; the page says {status!r}, {reason!r}"
                    page.wait_for_timeout(250)
                (client,) = running.coordinator.store.query("SELECT client_id, platform FROM clients")
                assert client["platform"] == "browser-chromium/wasm"
                page.wait_for_function(f"document.querySelector('#client-id').textContent === '{client['client_id']}'")
                joined_as.append(client["client_id"])
            finally:
                running.stop()
    finally:
        page.close()
    assert joined_as[0] != joined_as[1]
