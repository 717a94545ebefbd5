"""The loopback backend: a real ``fedge server`` process and one ``fedge client`` process per
client, talking gRPC on 127.0.0.1 — the deployment, shrunk onto one machine.

The run is set up the way an operator would set it up: a generated fedge.toml, client data
folders in the documented format, enrolment tokens. Progress is read from the daemon's store.
The same helpers start and kill daemons and agents for the fault-tolerance tests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fedge.client.datadir import write_local_data
from fedge.server.config import ServerSettings, to_toml
from fedge.server.store import Store
from fedge.simulation.config import SimulationConfig
from fedge.simulation.inprocess import TASK, Federation

# One BLAS thread per process: N agents on 2 cores would otherwise spin against each other.
QUIET_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fedge_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedge", *args]


@dataclass
class Daemon:
    """A ``fedge server`` process; ``kill`` is SIGKILL, ``stop`` is SIGTERM."""

    process: subprocess.Popen
    config: Path
    data_dir: Path
    address: str
    log: Path

    @classmethod
    def start(cls, config: Path, data_dir: Path, port: int, timeout_s: float = 60.0) -> Daemon:
        log = data_dir.parent / "server.log"
        (data_dir / "server.json").unlink(missing_ok=True)
        with open(log, "a") as out:
            process = subprocess.Popen(
                fedge_command("server", "--config", str(config), "--data-dir", str(data_dir), "--port", str(port)),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **QUIET_BLAS},
            )
        address = _wait_for_address(process, data_dir / "server.json", log, timeout_s)
        return cls(process, config, data_dir, address, log)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self, timeout_s: float = 10.0) -> int:
        self.process.terminate()
        return self.process.wait(timeout_s)


def _wait_for_address(process: subprocess.Popen, path: Path, log: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"fedge server exited with {process.returncode}; its log ({log}):\n{log.read_text()[-3000:]}"
            )
        if path.exists():
            info = json.loads(path.read_text())
            if info.get("pid") == process.pid:
                return info["address"]
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"fedge server did not start within {timeout_s:.0f} s; see {log}")


def start_agent(address: str, token: str, data: Path, log: Path, seed: int) -> subprocess.Popen:
    command = fedge_command("client", "--server", address, "--token", token, "--data", str(data), "--exit-when-done")
    with open(log, "a") as out:
        return subprocess.Popen(
            [*command, "--seed", str(seed)], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_BLAS}
        )


def write_setup(federation: Federation, config: SimulationConfig, workdir: Path) -> tuple[Path, list[Path]]:
    """fedge.toml and one data folder per client, as an operator and devices would have them."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    task = replace(federation.task, evaluate_on=config.dataset, select_timeout_s=60.0, train_deadline_s=600.0)
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=0, data_dir=workdir / "coordinator")
    config_path = workdir / "fedge.toml"
    config_path.write_text(to_toml(settings, [task]))
    folders = []
    for index, client in enumerate(federation.clients):
        folder = workdir / "clients" / f"client-{index:03d}"
        write_local_data(folder, client.x, client.y, client.labels, dataset=config.dataset,
                         normalisation=federation.splits.normalisation, client=index)  # fmt: skip
        folders.append(folder)
    return config_path, folders


def committed(store: Store, after: int) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT metrics_json FROM versions WHERE task_id = ? AND version > ? ORDER BY version", (TASK, after)
    )
    return [json.loads(r["metrics_json"]) for r in rows]


def run_rounds(config: SimulationConfig, federation: Federation, workdir: Path) -> Iterator[dict[str, Any]]:
    """Yield each committed round's metrics while the processes run the federation."""
    config_path, folders = write_setup(federation, config, workdir)
    data_dir = workdir / "coordinator"
    daemon = Daemon.start(config_path, data_dir, port=0)
    agents: list[subprocess.Popen] = []
    store = Store(data_dir)
    try:
        tokens = store.create_tokens(len(folders))
        for index, (token, folder) in enumerate(zip(tokens, folders, strict=True)):
            agents.append(
                start_agent(
                    daemon.address, token, folder, workdir / f"client-{index:03d}.log", seed=config.seed + index
                )
            )
        seen = 0
        while seen < config.rounds:
            for metrics in committed(store, seen):
                seen = metrics["version"]
                yield {**metrics, "waited_s": 0.0}  # real processes wait in real time
            _check_alive(daemon, agents, workdir)
            time.sleep(0.05)
    finally:
        for agent in agents:
            agent.terminate()
        daemon.stop()
        store.close()


def _check_alive(daemon: Daemon, agents: list[subprocess.Popen], workdir: Path) -> None:
    if daemon.process.poll() is not None:
        raise RuntimeError(f"fedge server exited with {daemon.process.returncode}; see {daemon.log}")
    failed = [i for i, a in enumerate(agents) if a.poll() not in (None, 0)]
    if failed:
        index = failed[0]
        log = workdir / f"client-{index:03d}.log"
        raise RuntimeError(f"fedge client {index} exited with {agents[index].returncode}; see {log}")
