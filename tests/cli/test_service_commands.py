"""The operator's path through the CLI with real processes: init, server, token, data split, client, status."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedge.simulation.loopback import Daemon, free_port
from tests.processes import wait_for


def fedge(*args: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fedge", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


def small_config(tmp_path, rounds: int = 2):
    """fedge init's file, shrunk: synthetic windows (50 × 6, 4 labels), 2 clients, short timeouts."""
    assert fedge("init", "--dir", str(tmp_path)).returncode == 0
    path = tmp_path / "fedge.toml"
    text = path.read_text()
    for old, new in [
        ("input_shape = [100, 6]", "input_shape = [50, 6]"),
        ('labels = ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"]', 'labels = ["0", "1", "2", "3"]'),
        ("rounds = 30", f"rounds = {rounds}"),
        ("http_port = 8080", "http_port = 0"),
        ("clients_per_round = 3", "clients_per_round = 2"),
        ('evaluate_on = "watch"', 'evaluate_on = "synthetic-imu"'),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("rounds = 2", 'rounds = "ten"', 'expected rounds to be an integer, got string "ten"'),
        ("[server]", "[server", "line"),  # a TOML syntax error
        ('strategy = "fedavg"', 'strategy = "fedsgd"', "expected strategy one of"),
    ],
)
def test_corrupt_config_is_refused_at_start_with_its_line(tmp_path, old, new, reason):
    path = small_config(tmp_path)
    text = path.read_text()
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    result = fedge("server", "--config", str(path))
    assert result.returncode == 2
    assert f"line {line}" in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_a_config_error_keeps_the_brackets_it_names(tmp_path):
    """The console reads "[task]" as markup unless the message is escaped: it would print "got a single "."""
    path = tmp_path / "fedge.toml"
    path.write_text('[task]\nname = "har"\n')
    result = fedge("server", "--config", str(path))
    assert result.returncode == 2
    assert "expected [[task]] tables (double brackets, one per task), got a single [task]" in result.stderr


def test_a_second_daemon_on_a_served_port_is_refused_not_given_half_the_clients(tmp_path):
    """gRPC binds with SO_REUSEPORT by default: the kernel would split connections between the two."""
    first = Daemon.start(small_config(tmp_path), tmp_path / "first", free_port())
    try:
        port = first.address.rsplit(":", 1)[1]
        config = ("--config", str(small_config(tmp_path / "second")), "--data-dir", str(tmp_path / "second" / "data"))
        second = fedge("server", *config, "--port", port, timeout=30)
        assert second.returncode == 2, second.stderr
        assert f"cannot listen on 127.0.0.1:{port}: the port is in use or not allowed" in second.stderr
        assert first.process.poll() is None  # the first one serves on
    finally:
        first.stop()


def test_server_stops_cleanly_on_sigterm(tmp_path):
    daemon = Daemon.start(small_config(tmp_path), tmp_path / "data", free_port())
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=20) == 0
    log = daemon.log.read_text()
    assert "stopping on SIGTERM: finishing in-flight requests" in log and log.rstrip().endswith("INFO stopped")


def one_client_config(tmp_path, rounds: int = 1):
    """small_config for a lone agent: a round needs one client."""
    config = small_config(tmp_path, rounds=rounds)
    text = config.read_text().replace("clients_per_round = 2", "clients_per_round = 1")
    config.write_text(text.replace("min_clients = 2", "min_clients = 1"))
    return config


def test_agent_says_when_every_task_has_completed_and_stops_cleanly_on_sigterm(tmp_path):
    daemon = Daemon.start(one_client_config(tmp_path), tmp_path / "data", free_port())
    try:
        token = fedge("token", "create", "--data-dir", str(tmp_path / "data")).stdout.strip()
        assert fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path / "split")).returncode == 0
        command = [sys.executable, "-m", "fedge", "client", "--server", daemon.address, "--token", token]
        log = tmp_path / "agent.log"
        with log.open("w") as stderr:
            agent = subprocess.Popen([*command, "--data", str(tmp_path / "split" / "client-000")], stderr=stderr)
        idle = "every task has completed: waiting for new ones"
        wait_for(lambda: idle in log.read_text(), repr(idle), [agent], 60, log)
        time.sleep(2.5)  # it checks in again meanwhile (every 2 s when idle), and says it once
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0, log.read_text()
        lines = log.read_text().splitlines()
        assert "round 1: trained and reported" in "\n".join(lines) and sum(idle in line for line in lines) == 1
        assert lines[-1].endswith("INFO stopped on SIGTERM")  # its log says why it ended
    finally:
        daemon.stop()


def test_agent_enrols_again_when_the_coordinator_at_its_address_was_set_up_afresh(tmp_path):
    """A device keeps its credential; the coordinator behind the address starts over with a new
    data dir and hands out a new token: the agent joins it instead of stopping on "unknown credential"."""
    config, port = one_client_config(tmp_path), free_port()
    assert fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path / "split")).returncode == 0
    folder = tmp_path / "split" / "client-000"
    saved = folder / ".fedge-agent.json"
    for run, data in enumerate(("first", "second")):
        daemon = Daemon.start(config, tmp_path / data, port)
        try:
            token = fedge("token", "create", "--data-dir", str(tmp_path / data)).stdout.strip()
            before = saved.read_text() if run else ""
            agent = fedge(
                "client", "--server", daemon.address, "--token", token, "--data", str(folder), "--exit-when-done"
            )
            assert agent.returncode == 0, agent.stderr
            assert "round 1: trained and reported" in agent.stderr
            knew = "the coordinator does not know the credential saved in"
            assert (knew in agent.stderr) == bool(run)
            assert saved.read_text() != before  # the new credential replaced the old one
        finally:
            daemon.stop()


def test_server_serves_tls_from_its_flags(tmp_path):
    made = fedge("tls", "create", "--host", "fedge.lan", "--cert", "cert.pem", "--key", "key.pem", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    flags = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    daemon = Daemon.start(small_config(tmp_path), tmp_path / "data", free_port(), *flags)
    try:
        assert json.loads((tmp_path / "data" / "server.json").read_text())["tls"] is True
        status = ("status", "--json", "--server", daemon.address, "--data-dir", str(tmp_path / "data"))
        trusted = fedge(*status, "--tls-ca", str(tmp_path / "cert.pem"))
        assert trusted.returncode == 0, trusted.stderr
        assert "does it serve TLS" in fedge(*status).stderr  # plaintext is refused, with what to check
    finally:
        daemon.stop()


def start_agent(address: str, token: str, data, *tls: str) -> subprocess.Popen:
    """An agent that exits once every task has completed; its log goes beside ``data``, as NAME.log."""
    command = [sys.executable, "-m", "fedge", "client", "--server", address, "--token", token, "--data", str(data)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    with open(Path(data).with_suffix(".log"), "w") as log:
        return subprocess.Popen([*command, *tls, "--exit-when-done"], env=env, stdout=subprocess.DEVNULL, stderr=log)


def serve_tls(config, tmp_path) -> list[str]:
    """Give the config a self-signed certificate made by `fedge tls create` (paths relative to the
    file, as an operator writes them); the client flags that trust it."""
    made = fedge("tls", "create", "--host", "fedge.lan", "--cert", "tls/cert.pem", "--key", "tls/key.pem", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = config.read_text().replace('tls_cert = ""', 'tls_cert = "tls/cert.pem"')
    config.write_text(text.replace('tls_key = ""', 'tls_key = "tls/key.pem"'))
    return ["--tls-ca", str(tmp_path / "tls" / "cert.pem")]


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_operator_runs_a_federation_with_the_cli_and_status_tells_the_truth(tmp_path, tls):
    config, data_dir = small_config(tmp_path), str(tmp_path / "data")
    trust = serve_tls(config, tmp_path) if tls else []
    daemon = Daemon.start(config, tmp_path / "data", free_port())
    try:
        created = fedge("token", "create", "--count", "3", "--server", daemon.address, "--data-dir", data_dir, *trust)
        assert created.returncode == 0, created.stderr
        tokens = created.stdout.split()
        assert len(tokens) == 3
        revoked = fedge("token", "revoke", tokens[2], "--data-dir", data_dir)
        assert revoked.stdout.strip() == f"revoked token {tokens[2]}"
        split = fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path / "split"))
        assert split.returncode == 0, split.stderr
        agents = [
            start_agent(daemon.address, t, tmp_path / "split" / f"client-00{i}", *trust)
            for i, t in enumerate(tokens[:2])
        ]
        assert [a.wait(timeout=120) for a in agents] == [0, 0]
        log = (tmp_path / "split" / "client-000.log").read_text()
        assert log.rstrip().endswith("INFO stopped as every task has completed")

        status = fedge("status", "--json", "--server", daemon.address, "--data-dir", data_dir, *trust)
        document = json.loads(status.stdout)
        task = document["tasks"][0]
        assert (task["status"], task["version"]) == ("completed", 2)
        assert [r["committed_version"] for r in task["rounds"]] == [2, 1]
        uname = os.uname()
        assert {c["platform"] for c in document["clients"]} == {f"python-{uname.sysname.lower()}-{uname.machine}"}
        assert 0 <= task["latest_metrics"]["accuracy"] <= 1
        server = document["server"]
        assert (server["address"], server["tls"], server["pid"]) == (daemon.address, tls, daemon.process.pid)
        assert (server["certificate_expires"] is not None) == tls
        shown = fedge("status", "--server", daemon.address, "--data-dir", data_dir, *trust).stdout
        over = "TLS, certificate expires in 825 days" if tls else "plaintext"
        line = rf"server {daemon.address} \({over}\), up \d+m, signing key {server['signing_key']}\n"
        assert re.search(line, shown), shown
        table = fedge("status", "--data-dir", data_dir)  # the same truth, read from the data dir
        assert "completed" in table.stdout and "committed" in table.stdout
        if tls:  # the daemon speaks nothing but TLS: a plaintext client gets a clear refusal
            plaintext = fedge("status", "--server", daemon.address, "--data-dir", data_dir)
            assert plaintext.returncode == 2 and "UNAVAILABLE" in plaintext.stderr
            assert json.loads((tmp_path / "data" / "server.json").read_text())["tls"] is True
            # a restart that forgot --tls-ca: the credential issued over TLS is not sent in plaintext
            folder = str(tmp_path / "split" / "client-000")
            forgot = fedge("client", "--server", daemon.address, "--data", folder, "--exit-when-done", timeout=30)
            assert forgot.returncode == 2 and "was issued over TLS: pass --tls-ca" in forgot.stderr
    finally:
        daemon.stop()


def test_a_store_that_is_not_sqlite_stops_the_daemon_and_status_in_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fedge.sqlite").write_text("not a database\n" * 300)
    for command in (("server", "--config", str(small_config(tmp_path))), ("status",)):
        result = fedge(*command, "--data-dir", str(tmp_path / "data"), timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "fedge.sqlite: cannot read the coordinator's store (file is not a database)" in result.stderr


def test_status_without_state_says_where_it_looked(tmp_path):
    result = fedge("status", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no coordinator state in" in result.stderr


def test_agent_with_data_that_does_not_fit_the_model_stops_with_the_reason(tmp_path):
    config = small_config(tmp_path)
    daemon = Daemon.start(config, tmp_path / "data", free_port())
    try:
        token = fedge("token", "create", "--data-dir", str(tmp_path / "data")).stdout.strip()
        fedge("data", "split", "--dataset", "watch", "--out", str(tmp_path / "split"))  # 100-step windows, not 50
        started = time.monotonic()
        result = fedge(
            "client", "--server", daemon.address, "--token", token, "--data", str(tmp_path / "split" / "client-000")
        )
        assert result.returncode == 2 and time.monotonic() - started < 60
        assert "the task's model expects (50, 6)" in result.stderr
    finally:
        daemon.stop()


def test_client_package_never_imports_the_server():
    code = (
        "import sys, fedge.client.agent, fedge.client.transport, fedge.shared.data.folder, fedge.cli.client; "
        "print(sorted(m for m in sys.modules if m.startswith('fedge.server')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_keys_show_prints_the_signing_key_the_server_created(tmp_path):
    config = small_config(tmp_path)
    daemon = Daemon.start(config, tmp_path / "data", free_port())
    daemon.stop()
    shown = fedge("keys", "show", "--json", "--data-dir", str(tmp_path / "data"))
    document = json.loads(shown.stdout)
    from fedge.shared import registry

    public = registry.load(tmp_path / "data" / "keys" / "signing.key").public_key()
    assert document["public_key"] == public.public_bytes().hex() and document["fingerprint"] == public.fingerprint()
    assert document["fingerprint"] in daemon.log.read_text()  # the daemon logged the same key


def test_keys_show_never_creates_a_key(tmp_path):
    result = fedge("keys", "show", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "fedge server` creates it" in result.stderr
    assert not (tmp_path / "keys").exists()


def test_the_server_line_names_the_gateway_and_a_certificate_due_for_renewal():
    from fedge.cli.admin import server_line

    now = 1_800_000_000.0
    about = {
        "address": "0.0.0.0:7070",
        "tls": True,
        "certificate_expires": now + 10 * 86400,
        "started": now - 26 * 3600,
        "gateway": "https://0.0.0.0:8080/",
        "signing_key": "4095e82002ed4ae3",
    }
    assert server_line(about, now) == (
        "server 0.0.0.0:7070 (TLS, certificate expires in 10 days (renew it)), up 1d 2h, "
        "gateway https://0.0.0.0:8080/, signing key 4095e82002ed4ae3"
    )
    plain = {**about, "tls": False, "certificate_expires": None, "gateway": None, "started": now - 3 * 3600 - 120}
    assert server_line(plain, now) == "server 0.0.0.0:7070 (plaintext), up 3h 2m, signing key 4095e82002ed4ae3"


def one_agent_daemon(tmp_path) -> tuple[Daemon, str]:
    """A daemon whose rounds need one report, and a token for the agent."""
    config = small_config(tmp_path, rounds=30)
    text = config.read_text().replace("clients_per_round = 2", "clients_per_round = 1")
    config.write_text(text.replace("min_clients = 2", "min_clients = 1"))
    daemon = Daemon.start(config, tmp_path / "data", free_port())
    return daemon, fedge("token", "create", "--data-dir", str(tmp_path / "data")).stdout.strip()


def reported_examples(data_dir) -> list[int]:
    """The examples each report counted, round by round, as the store holds them."""
    import sqlite3

    with sqlite3.connect(data_dir / "fedge.sqlite") as db:
        rows = db.execute("SELECT num_examples FROM participants WHERE status = 'reported' ORDER BY round_id")
        return [n for (n,) in rows]


def test_an_agent_trains_on_the_sessions_a_logger_adds_to_its_folder_while_it_runs(tmp_path):
    import numpy as np

    (daemon, token), agent = one_agent_daemon(tmp_path), None
    try:
        assert fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path / "split")).returncode == 0
        folder = tmp_path / "split" / "client-000"
        command = [sys.executable, "-m", "fedge", "client", "--server", daemon.address, "--token", token]
        log = tmp_path / "agent.log"
        with open(log, "w") as out:
            agent = subprocess.Popen([*command, "--data", str(folder)], stdout=out, stderr=out)
        examples = lambda: reported_examples(tmp_path / "data")  # noqa: E731
        wait_for(lambda: len(examples()) >= 1, "a first report", [agent], log=log)
        before = examples()[0]
        with np.load(next(folder.glob("*.npz"))) as first:  # a logger's next session: 5 more windows
            np.savez(folder / "session-0001.npz", x=first["x"][:5], y=first["y"][:5])
        wait_for(lambda: examples()[-1] == before + 5, "a report with the new session", [agent], log=log)
        assert "local data changed" in log.read_text()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
    finally:
        if agent is not None:
            agent.kill()
        daemon.stop()


def test_an_agent_trains_on_what_its_reader_returns_and_needs_exactly_one_source(tmp_path):
    reader = tmp_path / "sensor.py"
    reader.write_text(
        "import numpy as np\n\n"
        "def windows():\n"
        "    rng = np.random.default_rng(0)\n"
        "    return rng.normal(size=(24, 50, 6)).astype(np.float32), np.arange(24) % 4\n"
    )
    both = fedge("client", "--server", "127.0.0.1:1", "--data", str(tmp_path), "--reader", f"{reader}:windows")
    neither = fedge("client", "--server", "127.0.0.1:1")
    for refused in (both, neither):
        assert refused.returncode == 2 and "expected exactly one of them" in refused.stderr, refused.stderr

    (daemon, token), agent = one_agent_daemon(tmp_path), None
    try:
        command = [sys.executable, "-m", "fedge", "client", "--server", daemon.address, "--token", token]
        env = {**os.environ, "FEDGE_READER": f"{reader}:windows"}  # as a service's environment file sets it
        log = tmp_path / "agent.log"
        with open(log, "w") as out:
            agent = subprocess.Popen(command, stdout=out, stderr=out, cwd=tmp_path, env=env)
        wait_for(lambda: reported_examples(tmp_path / "data"), "a report", [agent], log=log)
        assert reported_examples(tmp_path / "data")[0] == 24
        assert (tmp_path / ".fedge-agent.json").exists()  # no data folder: the credential in the working folder
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
    finally:
        if agent is not None:
            agent.kill()
        daemon.stop()


def test_an_operator_requires_client_certificates_and_a_device_presents_one(tmp_path):
    """fedge tls client-ca / client-cert, tls_client_ca in fedge.toml, and an agent with FEDGE_TLS_IDENTITY."""
    config = small_config(tmp_path)
    trust = serve_tls(config, tmp_path)
    assert fedge("tls", "client-ca", "--cert", "tls/clients.crt", "--key", "ca.key", cwd=tmp_path).returncode == 0
    issued = fedge(
        "tls", "client-cert", "--name", "device-7", "--ca-cert", "tls/clients.crt", "--ca-key", "ca.key", cwd=tmp_path
    )
    assert issued.returncode == 0 and "--tls-identity device-7.pem" in issued.stdout, issued.stderr
    config.write_text(config.read_text().replace('tls_client_ca = ""', 'tls_client_ca = "tls/clients.crt"'))
    daemon, agent = Daemon.start(config, tmp_path / "data", free_port()), None
    try:
        status = ("status", "--server", daemon.address, "--data-dir", str(tmp_path / "data"), *trust)
        refused = fedge(*status)
        assert refused.returncode == 2 and "--tls-identity" in refused.stderr  # what to check
        shown = fedge(*status, "--tls-identity", str(tmp_path / "device-7.pem"))
        assert shown.returncode == 0 and "(mutual TLS, certificate expires in" in shown.stdout, shown.stderr

        token = fedge("token", "create", "--data-dir", str(tmp_path / "data")).stdout.strip()
        assert fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(tmp_path / "split")).returncode == 0
        folder = tmp_path / "split" / "client-000"
        command = [sys.executable, "-m", "fedge", "client", "--server", daemon.address, "--token", token, *trust]
        env = {**os.environ, "FEDGE_TLS_IDENTITY": str(tmp_path / "device-7.pem")}
        agent = subprocess.Popen([*command, "--data", str(folder)], stderr=subprocess.PIPE, text=True, env=env)
        credential = folder / ".fedge-agent.json"
        wait_for(credential.exists, "the agent to enrol", [agent], 60)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0, agent.stderr.read()
    finally:
        if agent is not None:
            agent.kill()
        daemon.stop()
