"""The Node desktop client (`client/js/bin/fedge-node.js`) in a secure cohort with two Python agents.

Real processes over real gRPC on loopback: the coordinator daemon, two `fedge client` agents
and one `fedge-node` process, each on its own `fedge data split` folder. Every round must commit
with all three reports, the Node client's among them under its `node-<os>-<arch>/wasm`
platform, and the held-out accuracy must show that the masks (and, in the DP run, every
device's noise) summed as planned. A second start finds the saved credential and needs no token.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fedge.server.config import ServerSettings, TaskConfig
from fedge.server.daemon import Running, start
from fedge.shared.tls import create_certificate, create_client_ca, issue_client_identity
from fedge.simulation.loopback import free_port, start_agent
from tests.cohort import (
    ROUNDS,
    committed_rounds,
    data_folders,
    node_or_skip,
    reporters,
    secure_task,
    start_node_client,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node() -> str:
    return node_or_skip()


def scored_task() -> TaskConfig:
    """Devices hold a quarter of their samples out and "best" follows their scores: the task
    ends with a scoring round, in which the Node client only scores the last version."""
    task = secure_task()
    training = replace(task.training, holdout=0.25)
    return replace(task, training=training, publish="best", publish_metric="eval_accuracy", publish_int8=False)


@pytest.fixture(params=[False, True], ids=["secagg-scored", "secagg-dp"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=0, data_dir=tmp_path / "coordinator")
    running = start(settings, [secure_task(dp=True) if request.param else scored_task()])
    try:
        yield running
    finally:
        running.stop()


def test_node_client_and_python_agents_complete_secure_rounds(node: str, server: Running, tmp_path: Path) -> None:
    folders = data_folders(tmp_path / "clients")
    node_token, *agent_tokens = server.coordinator.store.create_tokens(3)
    log = tmp_path / "fedge-node.log"
    processes = [
        start_node_client(node, "--server", server.address, "--token", node_token, "--data", str(folders[0]),
                   "--name", "desk-1", "--exit-when-done", log=log),
        *[start_agent(server.address, token, folder, tmp_path / f"agent-{i}.log", seed=i)
          for i, (token, folder) in enumerate(zip(agent_tokens, folders[1:], strict=True))],
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        while committed_rounds(server) < ROUNDS:
            crashed = [p for p in processes if p.poll() not in (None, 0)]
            assert not crashed, f"a client exited with {crashed[0].returncode}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"{committed_rounds(server)}/{ROUNDS} rounds: {log.read_text()[-2000:]}"
            time.sleep(0.25)
        assert processes[0].wait(60) == 0, log.read_text()[-2000:]  # --exit-when-done: every task completed
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)

    system = subprocess.run([node, "-p", "`${process.platform}-${process.arch}`"], capture_output=True, text=True)
    platform = f"node-{system.stdout.strip()}/wasm"
    by_round = reporters(server)
    assert sorted(by_round) == list(range(1, ROUNDS + 1))
    for number, platforms in by_round.items():
        assert len(platforms) == 3 and platform in platforms, (number, platforms)
    output = log.read_text()
    reported = rf"round {ROUNDS}: trained and reported \(training loss [0-9.e-]+, accuracy [01]\.\d{{3}}[;)]"
    assert re.search(reported, output), output
    store = server.coordinator.store
    rows = store.query("SELECT metrics_json FROM versions WHERE version > 0 ORDER BY version")
    history = [json.loads(r["metrics_json"]) for r in rows]
    assert history[-1]["accuracy"] > 0.7, history  # 4 classes: chance is 0.25
    if server.coordinator.tasks["har"].task.dp_noise:
        assert all(m["epsilon"] > 0 for m in history), history
    else:  # the scoring round: every device, the Node client among them, scored the last version
        scoring = store.query(
            "SELECT c.platform FROM participants p JOIN rounds r USING (round_id) JOIN clients c USING (client_id)"
            " WHERE r.phase = 'scored' AND r.number = ? AND p.status = 'reported'",
            (ROUNDS + 1,),
        )
        assert len(scoring) == 3 and platform in [r["platform"] for r in scoring], scoring
        assert re.search(rf"round {ROUNDS + 1}: scored the model received: [01]\.\d{{3}} on held-out samples", output)
        assert store.scores("har")["version"] == ROUNDS

    again = start_node_client(node, "--server", server.address, "--data", str(folders[0]), "--exit-when-done", log=log)
    assert again.wait(60) == 0, log.read_text()[-2000:]  # no token: the saved credential
    clients = store.query("SELECT name FROM clients WHERE platform LIKE 'node-%'")
    assert [c["name"] for c in clients] == ["desk-1"], clients


def test_node_client_enrols_again_when_the_coordinator_at_its_address_was_set_up_afresh(
    node: str, tmp_path: Path
) -> None:
    """As `fedge client` does: a saved credential the coordinator never issued, and a token given."""
    task = replace(secure_task(), secagg=False, rounds=1, clients_per_round=1, min_clients=1)
    (folder, *_) = data_folders(tmp_path / "clients")
    log, port, seen = tmp_path / "fedge-node.log", free_port(), []
    for data in ("first", "second"):
        settings = ServerSettings(host="127.0.0.1", port=port, http_port=0, data_dir=tmp_path / data)
        running = start(settings, [task])
        try:
            (token,) = running.coordinator.store.create_tokens(1)
            args = ["--server", running.address, "--token", token, "--data", str(folder), "--exit-when-done"]
            assert start_node_client(node, *args, log=log).wait(90) == 0, log.read_text()[-2000:]
            assert committed_rounds(running) == 1
            seen.append(json.loads((folder / ".fedge-node.json").read_text())[running.address]["credential"])
        finally:
            running.stop()
    assert seen[0] != seen[1]  # the new coordinator's credential replaced the old one
    assert log.read_text().count("the coordinator does not know the credential saved in") == 1


@pytest.mark.parametrize("given", ["flags", "environment"])
def test_node_client_with_an_unknown_token_exits_with_the_reason(node: str, tmp_path: Path, given: str) -> None:
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=0, data_dir=tmp_path / "coordinator")
    running = start(settings, [secure_task()])
    try:
        (folder, *_) = data_folders(tmp_path / "clients")
        log = tmp_path / "fedge-node.log"
        if given == "flags":
            args = ["--server", running.address, "--token", "guessed", "--data", str(folder)]
            process = start_node_client(node, *args, log=log)
        else:  # as a service's environment file gives them, the variables `fedge client` reads
            env = {"FEDGE_SERVER": running.address, "FEDGE_TOKEN": "guessed", "FEDGE_DATA": str(folder)}
            process = start_node_client(node, log=log, env=env)
        assert process.wait(60) == 2
        assert "error: enrolment refused: unknown enrolment token" in log.read_text()
        assert not (folder / ".fedge-node.json").exists()
    finally:
        running.stop()


def only_the_first_enrols(store, admitted: subprocess.Popen, refused: subprocess.Popen, log: Path) -> None:
    """``admitted`` enrols; ``refused`` keeps retrying, never reaching the daemon: its token is not spent."""
    deadline = time.monotonic() + 60
    while not store.query("SELECT 1 FROM clients WHERE platform LIKE 'node-%'"):
        assert admitted.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.25)
    time.sleep(2)  # the other has been retrying all along, saying why
    assert refused.poll() is None, log.read_text()[-2000:]
    assert len(store.query("SELECT 1 FROM clients")) == 1


def test_node_client_enrols_over_tls_only_when_it_trusts_the_certificate(node: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["localhost", "127.0.0.1"])
    settings = ServerSettings(
        port=0, http_port=0, data_dir=tmp_path / "coordinator", tls_cert=str(cert), tls_key=str(key)
    )
    running = start(settings, [secure_task()])
    store = running.coordinator.store
    (folder, other, *_) = data_folders(tmp_path / "clients")
    plaintext_token, tls_token = store.create_tokens(2)
    log = tmp_path / "fedge-node.log"
    common = ["--server", running.address, "--exit-when-done"]
    plaintext = start_node_client(node, *common, "--token", plaintext_token, "--data", str(other), log=log)
    trusting = start_node_client(
        node, *common, "--token", tls_token, "--data", str(folder), "--tls-ca", str(cert), log=log
    )
    try:
        only_the_first_enrols(store, trusting, plaintext, log)
    finally:
        for process in (plaintext, trusting):
            process.terminate()
            process.wait(10)
        running.stop()
    assert (folder / ".fedge-node.json").exists() and not (other / ".fedge-node.json").exists()
    # a restart that forgot --tls-ca: the credential issued over TLS is not sent in plaintext
    forgot = start_node_client(node, *common, "--data", str(folder), log=log)
    assert forgot.wait(30) == 2
    assert "was issued over TLS: pass --tls-ca" in log.read_text()
    assert "enrolment: coordinator unreachable (" in log.read_text()


def test_node_client_presents_its_client_certificate_to_a_mutual_tls_daemon(node: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_certificate(cert, key, ["localhost", "127.0.0.1"])
    ca, ca_key, identity = tmp_path / "clients.crt", tmp_path / "clients.key", tmp_path / "device.pem"
    create_client_ca(ca, ca_key, "clients")
    issue_client_identity(ca, ca_key, identity, "device")
    settings = ServerSettings(
        port=0, http_port=0, data_dir=tmp_path / "c", tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(ca)
    )
    running = start(settings, [secure_task()])
    store = running.coordinator.store
    (folder, other, *_) = data_folders(tmp_path / "clients")
    with_identity, without = store.create_tokens(2)
    log = tmp_path / "fedge-node.log"
    common = ["--server", running.address, "--exit-when-done", "--tls-ca", str(cert)]
    anonymous = start_node_client(node, *common, "--token", without, "--data", str(other), log=log)
    device = start_node_client(
        node, *common, "--token", with_identity, "--data", str(folder), "--tls-identity", str(identity), log=log
    )
    try:
        only_the_first_enrols(store, device, anonymous, log)
    finally:
        for process in (anonymous, device):
            process.terminate()
            process.wait(10)
        running.stop()
