"""deploy/systemd: the units are valid for systemd, and what they start works as they start it.

Each unit's ExecStart, Environment, EnvironmentFile, StateDirectory and WorkingDirectory are
played by hand, with the install paths moved into a temporary root: a real daemon and real
agents, configured only the way the units configure them, then stopped with SIGTERM as systemd
stops them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_service_commands import fedge, small_config
from tests.processes import wait_for

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
FEDGE = "/opt/fedge/bin/fedge"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of key → values in order (a key may repeat, as Environment= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_environment_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile=: KEY=VALUE lines, # and ; comments, optional quotes."""
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and line[0] not in "#;":
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip().strip("'\"")
    return found


@dataclass
class Root:
    """The unit's absolute paths, moved under a temporary folder."""

    base: Path

    def path(self, text: str) -> str:
        for prefix in ("/etc/fedge", "/var/lib"):
            if text == prefix or text.startswith(prefix + "/"):
                return str(self.base) + text
        return text

    def service(self, unit: str, env_file: dict[str, str] | None = None) -> tuple[list[str], dict[str, str], Path]:
        """The command, environment and working directory that systemd would give the unit's process."""
        service = read_unit(UNITS / unit)["Service"]
        env = {}
        for assignments in service.get("Environment", []):
            for assignment in shlex.split(assignments):
                key, _, value = assignment.partition("=")
                env[key] = self.path(value)
        for name in service.get("EnvironmentFile", []):  # it overrides Environment=, as in systemd
            env |= {key: self.path(value) for key, value in (env_file or read_environment_file(Path(name))).items()}
        for name in service.get("StateDirectory", []):
            Path(self.path(f"/var/lib/{name}")).mkdir(parents=True, exist_ok=True)
        program, *args = shlex.split(service["ExecStart"][0])
        assert program == FEDGE, f"{unit} starts {program}"
        command = [sys.executable, "-m", "fedge", *(self.path(arg) for arg in args)]
        plain = {key: value for key, value in os.environ.items() if not key.startswith("FEDGE_")}
        return command, {**plain, "OPENBLAS_NUM_THREADS": "1", **env}, Path(self.path(service["WorkingDirectory"][0]))


def test_systemd_accepts_every_directive_of_the_units(tmp_path):
    """systemd-analyze names an unknown key or a value it cannot parse (and ignores it)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/setup.sh installs Debian's systemd"
    for unit in sorted(UNITS.glob("*.service")):
        (tmp_path / unit.name).write_text(unit.read_text().replace(FEDGE, sys.executable))  # a program that exists
    units = sorted(str(path) for path in tmp_path.glob("*.service"))
    assert len(units) == 2
    checked = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr


def test_the_example_environment_file_sets_only_what_fedge_client_reads():
    from fedge.cli.client import ENVIRONMENT

    example = read_environment_file(UNITS / "client.env")
    assert set(example) <= set(ENVIRONMENT.values())
    assert {"FEDGE_SERVER", "FEDGE_DATA", "FEDGE_TOKEN"} <= set(example)


def committed_rounds(data_dir: str) -> int:
    status = fedge("status", "--json", "--data-dir", data_dir)
    return max((task["version"] for task in json.loads(status.stdout)["tasks"]), default=0)


@pytest.mark.slow
def test_the_units_run_a_federation_and_stop_cleanly(tmp_path):
    root = Root(tmp_path / "coordinator")
    etc = Path(root.path("/etc/fedge"))
    etc.mkdir(parents=True)
    shutil.copy(small_config(tmp_path, rounds=30), etc / "fedge.toml")  # fedge init --dir /etc/fedge, shrunk
    command, env, cwd = root.service("fedge-server.service")
    server_log = tmp_path / "server.log"
    with open(server_log, "w") as log:
        server = subprocess.Popen([*command, "--port", "0"], env=env, cwd=cwd, stdout=log, stderr=log)
    processes = [server]
    try:
        data_dir = root.path("/var/lib/fedge")  # the unit's FEDGE_DATA_DIR, over fedge.toml's data_dir
        wait_for(lambda: Path(data_dir, "server.json").exists(), "the daemon to start", processes)
        address = json.loads(Path(data_dir, "server.json").read_text())["address"]
        tokens = fedge("token", "create", "--count", "2", "--data-dir", data_dir).stdout.split()
        split = tmp_path / "split"
        made = fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(split))  # 4 subjects
        assert made.returncode == 0, made.stderr

        def agent(index: int) -> subprocess.Popen:
            """The agent on device ``index``: its own root, as each device has its own /var/lib."""
            settings = read_environment_file(UNITS / "client.env")
            settings |= {"FEDGE_SERVER": address, "FEDGE_DATA": str(split / f"client-00{index}")}
            settings |= {"FEDGE_TOKEN": tokens[index], "FEDGE_NAME": f"device-{index}", "FEDGE_TLS_CA": ""}
            command, env, cwd = Root(tmp_path / f"device-{index}").service("fedge-client.service", settings)
            with open(tmp_path / f"agent-{index}.log", "a") as log:
                return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=log)

        agents = [agent(0), agent(1)]
        processes += agents
        wait_for(lambda: committed_rounds(data_dir) >= 1, "a round to commit", processes)
        for index in (0, 1):  # the unit's FEDGE_STATE, not the data folder
            assert (tmp_path / f"device-{index}/var/lib/fedge-client/agent.json").exists()
            assert not (split / f"client-00{index}" / ".fedge-agent.json").exists()

        # systemd stops with SIGTERM: a clean exit (0), so Restart=on-failure leaves it stopped
        agents[0].send_signal(signal.SIGTERM)
        assert agents[0].wait(timeout=30) == 0, (tmp_path / "agent-0.log").read_text()
        # a restart with the token still in client.env: the saved credential is used, the token not spent again
        processes.append(again := agent(0))
        time.sleep(3)
        assert again.poll() is None, (tmp_path / "agent-0.log").read_text()
        names = {c["name"] for c in json.loads(fedge("status", "--json", "--data-dir", data_dir).stdout)["clients"]}
        assert names == {"device-0", "device-1"}, names

        for process in (again, agents[1], server):
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, server_log.read_text()
    finally:
        for process in processes:
            process.kill()
            process.wait()
