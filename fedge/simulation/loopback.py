"""The loopback backend: a real ``fedge server`` process and one ``fedge client`` process per
client, talking gRPC on 127.0.0.1 — the deployment, shrunk onto one machine.

The run is set up the way an operator would set it up: a generated fedge.toml, client data
folders in the documented format, enrolment tokens. Progress is read from the daemon's store.
The same helpers start and kill daemons and agents for the fault-tolerance tests. Every process
started here stops once the runner that started it is gone, however it died
(``shared/stopping.py``), and a stopped run carries on (``--resume``) with the same store, the
daemon on the same port (each client's credential is saved for that address) and the same
client folders.

With ``--dropout F`` (secure rounds), clients really vanish: before each round's stage drawn for
it, an agent process exits abruptly (``simulation/vanish.py``), and the coordinator carries on
with the survivors, noticing the loss only when the stage's deadline passes, as it would in a
deployment. The runner starts the agent again at once on the same data folder (same credential),
and the replacement joins from the next round: the cohort stays full, as on the in-process
backend, rather than shrinking by F every round until too few are left to unmask. Which clients
vanish in which round, and at which stage, is drawn from the seed exactly as the in-process
backend draws it (the same plan as long as no round is retried). Every vanishing is listed in
``vanished.jsonl`` beside the client logs. Since the waits are real, the task's secure-stage and
training deadlines are shortened from a timing of one client's local training (``deadlines``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fedge.cli.client import ENVIRONMENT as AGENT_ENVIRONMENT
from fedge.client.agent import STATE_FILE, load_credential
from fedge.server.config import ENVIRONMENT as SERVER_ENVIRONMENT
from fedge.server.config import ServerSettings, TaskConfig, to_toml
from fedge.server.store import DATABASE, Store
from fedge.shared.data import DATASETS
from fedge.shared.data.local import client_folder, write_split
from fedge.shared.nn import Model
from fedge.shared.stopping import owned_env
from fedge.shared.training import fit
from fedge.simulation import vanish
from fedge.simulation.config import SimulationConfig
from fedge.simulation.inprocess import Federation, committed, draw_vanishing

# One BLAS thread per process: N agents on 2 cores would otherwise spin against each other.
QUIET_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Settings a real daemon or agent reads from the environment; the run's own come as flags and its
# fedge.toml, which a FEDGE_HTTP_PORT or FEDGE_TLS_CA left in the shell would override.
SETTINGS_ENVIRONMENT = {*SERVER_ENVIRONMENT.values(), *AGENT_ENVIRONMENT.values()}


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process the run starts: this one's, less the settings variables."""
    inherited = {key: value for key, value in os.environ.items() if key not in SETTINGS_ENVIRONMENT}
    return {**inherited, **QUIET_BLAS, **owned_env(), **(extra or {})}


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
    def start(cls, config: Path, data_dir: Path, port: int, *flags: str, timeout_s: float = 60.0) -> Daemon:
        """``flags``: more of ``fedge server``'s options, e.g. ``--tls-cert``."""
        log = data_dir.parent / "server.log"
        (data_dir / "server.json").unlink(missing_ok=True)
        with open(log, "a") as out:
            process = subprocess.Popen(
                fedge_command(
                    "server", "--config", str(config), "--data-dir", str(data_dir), "--port", str(port), *flags
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
        address = _wait_for_address(process, data_dir / "server.json", log, timeout_s)
        return cls(process, config, data_dir, address, log)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM: the daemon finishes what it publishes (ONNX, int8, its held-out figures), which
        takes seconds on a loaded machine, then exits."""
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


def start_agent(
    address: str,
    token: str,
    data: Path,
    log: Path,
    seed: int,
    env: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> subprocess.Popen:
    """A `fedge client` process; ``options`` are further flags (e.g. ``--tls-ca FILE``)."""
    command = fedge_command("client", "--server", address, "--token", token, "--data", str(data), "--exit-when-done")
    with open(log, "a") as out:
        return subprocess.Popen(
            [*command, "--seed", str(seed), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(env),
        )


def write_setup(federation: Federation, config: SimulationConfig, workdir: Path) -> tuple[Path, list[Path]]:
    """fedge.toml and one data folder per client, as an operator and devices would have them."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    # a built-in dataset: the daemon loads the same held-out split; samples of your own: their
    # held-out share, written as heldout/ beside the clients' folders
    own, splits = config.dataset not in DATASETS, federation.splits
    folders = write_split(
        workdir / "clients", federation.clients, splits.heldout if own else None, splits.normalisation
    )
    evaluate_on = str(folders.pop()) if own else config.dataset
    task = replace(realtime_task(federation, config), evaluate_on=evaluate_on)
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=0, data_dir=workdir / "coordinator")
    config_path = workdir / "fedge.toml"
    config_path.write_text(to_toml(settings, [task]))
    return config_path, folders


def realtime_task(federation: Federation, config: SimulationConfig) -> TaskConfig:
    """The task for clients that wait in real time (not on a simulated clock): a minute to fill the
    cohort, ten to train, and, with vanishing clients, ``deadlines`` short enough to notice them."""
    task = replace(federation.task, select_timeout_s=60.0, train_deadline_s=600.0)
    return replace(task, **deadlines(federation, config)) if config.dropout else task


def deadlines(federation: Federation, config: SimulationConfig) -> dict[str, float]:
    """Deadlines for a run with vanishing clients: a vanished client costs the coordinator the
    deadline of the stage it never finished (advertise and share: ``secagg_timeout_s``, the masked
    input: ``train_deadline_s``), in real time. Short, then, but with room for every survivor: the
    largest client's local training is timed here, and the cohort shares the cores while it trains.
    A survivor that still misses one is a dropout too; the round goes on if enough are left, else
    it is retried."""
    largest = max(federation.clients, key=len)
    model = Model(federation.spec, seed=config.seed)
    started = time.perf_counter()
    fit(model, largest.x, largest.y, config.train_config(), np.random.default_rng(config.seed))
    fit_s = time.perf_counter() - started
    cohort = federation.task.clients_per_round
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    stage_s = 3.0 + 0.1 * cohort  # keys and shares are milliseconds of work; the rest is polling and load
    train_s = stage_s + 3.0 * fit_s * math.ceil(cohort / cores)
    return {"secagg_timeout_s": round(stage_s, 1), "train_deadline_s": round(train_s, 1)}


def vanishing_plan(config: SimulationConfig, clients: int, after: int = 0) -> dict[int, dict[int, str]]:
    """client index -> {round number: stage}: ``round(F × clients)`` clients per round, each at a
    random secure stage, drawn as the in-process ``Dropouts`` draws them (same seed, same plan);
    rounds up to ``after`` (done before a resume) are left out."""
    rng = np.random.default_rng([config.seed, 0xD80])
    plan: dict[int, dict[int, str]] = {}
    for number in range(1, config.rounds + 1):
        for index, stage in draw_vanishing(rng, clients, config.dropout).items():
            if number > after:
                plan.setdefault(index, {})[number] = stage
    return plan


@dataclass
class Agents:
    """The agent processes of a run, each restarted on its own data folder when it vanishes."""

    address: str
    tokens: list[str]
    folders: list[Path]
    workdir: Path
    seed: int
    plan: dict[int, dict[int, str]]  # vanishing_plan, less the rounds each client has vanished in
    processes: list[subprocess.Popen] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # processes started per client: a replacement's seed differs

    def start_all(self) -> None:
        self.starts = [0] * len(self.folders)
        self.processes = [self._start(index, sit_out=0) for index in range(len(self.folders))]

    def log(self, index: int) -> Path:
        return self.workdir / f"client-{index:03d}.log"

    def marker(self, index: int) -> Path:
        return self.workdir / "vanish" / f"client-{index:03d}.json"

    def _start(self, index: int, sit_out: int) -> subprocess.Popen:
        env = {}
        if self.plan:
            self.marker(index).parent.mkdir(exist_ok=True)
            orders = vanish.Orders(self.plan.get(index, {}), str(self.marker(index)), sit_out)
            env[vanish.ENV] = orders.to_env()
        seed = self.seed + index + len(self.folders) * self.starts[index]
        self.starts[index] += 1
        return start_agent(self.address, self.tokens[index], self.folders[index], self.log(index), seed, env)

    def replace_vanished(self) -> None:
        """Record each process that vanished as planned and start its replacement at once."""
        for index, process in enumerate(self.processes):
            if process.poll() != vanish.EXIT_CODE:
                continue
            event = self._record(index)
            if event is None:
                raise RuntimeError(f"fedge client {index} exited as if it vanished, but left no record")
            self.plan[index] = {n: s for n, s in self.plan.get(index, {}).items() if n > event["round"]}
            self.processes[index] = self._start(index, sit_out=event["round_id"])

    def _record(self, index: int) -> dict[str, Any] | None:
        marker = self.marker(index)
        if not marker.exists():
            return None
        event = {"client": index, **json.loads(marker.read_text())}
        marker.unlink()
        with open(self.workdir / "vanished.jsonl", "a") as out:
            out.write(json.dumps(event) + "\n")
        return event

    def stop(self, timeout_s: float = 10.0) -> None:
        for process in self.processes:
            process.terminate()
        for index, process in enumerate(self.processes):
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode == vanish.EXIT_CODE:
                self._record(index)  # vanished in the last round, after the runner stopped looking


def run_rounds(
    config: SimulationConfig, federation: Federation, workdir: Path, after: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each committed round's metrics while the processes run the federation; with
    ``after``, carry on the run stopped in ``workdir`` past that version (``stopped_setup``)."""
    if after is None:
        config_path, folders = write_setup(federation, config, workdir)
        port = 0
    else:
        config_path, folders, port = stopped_setup(workdir, len(federation.clients))
    data_dir = workdir / "coordinator"
    daemon = Daemon.start(config_path, data_dir, port=port)
    store = Store(data_dir)
    plan = vanishing_plan(config, len(folders), after or 0) if config.dropout else {}
    tokens = enrolment_tokens(store, folders, daemon.address)
    agents = Agents(daemon.address, tokens, folders, workdir, config.seed, plan)
    try:
        agents.start_all()
        seen = after or 0
        while seen < config.rounds:
            for metrics in committed(store, seen):  # real processes wait in real time: waited_s 0
                seen = metrics["version"]
                yield metrics
            agents.replace_vanished()
            _check_alive(daemon, agents)
            time.sleep(0.05)
    finally:
        agents.stop()
        daemon.stop()
        store.close()


def enrolment_tokens(store: Store, folders: list[Path], address: str) -> list[str]:
    """A token for each client not enrolled with the daemon at ``address`` yet, "" for one whose
    saved credential holds (a resumed run's): no unused token is left behind in the store."""
    new = [load_credential(folder / STATE_FILE, address) is None for folder in folders]
    tokens = iter(store.create_tokens(sum(new)))
    return [next(tokens) if needed else "" for needed in new]


def stopped_setup(workdir: Path, clients: int, timeout_s: float = 60.0) -> tuple[Path, list[Path], int]:
    """A stopped run's fedge.toml, client folders and port. The daemon starts again on the port it
    had, since each client's credential is saved for that address, once the stopped run's daemon
    has exited (its processes stop by themselves when their runner is gone; one that still runs
    after ``timeout_s`` means the run was not stopped, and is refused)."""
    data_dir = workdir / "coordinator"
    info_path = data_dir / "server.json"
    if not (data_dir / DATABASE).exists() or not info_path.exists():
        raise FileNotFoundError(f"nothing to resume in {workdir}: no coordinator store there")
    info = json.loads(info_path.read_text())
    deadline = time.monotonic() + timeout_s
    while _runs(int(info["pid"]), data_dir):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the run in {workdir} still runs (its daemon is process {info['pid']}): stop it first")
        time.sleep(0.1)
    folders = [client_folder(workdir / "clients", index) for index in range(clients)]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise FileNotFoundError(f"cannot resume the run in {workdir}: client folders are missing: {', '.join(missing)}")
    return workdir / "fedge.toml", folders, int(info["address"].rsplit(":", 1)[1])


def _runs(pid: int, data_dir: Path) -> bool:
    """Whether process ``pid`` is still the daemon serving ``data_dir`` (a pid is reused once free)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:  # no such process (or no /proc: then trust the pid alone)
        if Path("/proc").is_dir():
            return False
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return state != "Z" and str(data_dir).encode() in command


def _check_alive(daemon: Daemon, agents: Agents) -> None:
    """The daemon runs and no agent failed: a planned vanishing is no failure (replaced first)."""
    if daemon.process.poll() is not None:
        raise RuntimeError(f"fedge server exited with {daemon.process.returncode}; see {daemon.log}")
    failed = [i for i, a in enumerate(agents.processes) if a.poll() not in (None, 0, vanish.EXIT_CODE)]
    if failed:
        index = failed[0]
        code = agents.processes[index].returncode
        raise RuntimeError(f"fedge client {index} exited with {code}; see {agents.log(index)}")
