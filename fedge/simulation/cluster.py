"""The Ray backend: the coordinator and the clients as Ray actors, on this machine or a cluster.

For more clients than one machine holds. Nothing here reimplements a round: one actor runs the
coordinator, with its round loop in a thread as the daemon does, and the clients are ``Agent``s
spread over the other actors (one per CPU of the cluster), each talking to it through
``InProcessTransport`` over a ``RemoteCoordinator``: the protocol's very messages, carried by
Ray instead of gRPC. An actor plays its agents in turn, each when the coordinator said to ask
again, so its CPU trains one client at a time, as a device would.

The coordinator's actor is placed on the runner's node, which reads its store for progress as
the loopback runner reads its daemon's. Clients' samples travel to the actors as Ray objects:
the other nodes need fedge installed, not the dataset. Waits are real, as on the loopback
backend, and so are the deadlines (``loopback.realtime_task``). With ``--dropout F``, an agent
vanishes right before the request of the stage drawn for it (the loopback backend's plan, from
the same seed, and its ``vanish.VanishingTransport``, which raises here where a process would
exit): the coordinator carries on without it when the stage's deadline passes, and it joins
again from the next round. Each vanishing is listed in ``vanished.jsonl`` beside the metrics.

``RAY_ADDRESS`` names a cluster to join; without it, a Ray instance starts for the run on this
machine, on 127.0.0.1 only, and stops with it.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fedge.client.agent import Agent, AgentStopped, LocalTrainer, Outcome
from fedge.client.transport import InProcessTransport, TransportError, local_call
from fedge.server.config import TaskConfig
from fedge.server.store import DATABASE, Store
from fedge.shared import data
from fedge.simulation import vanish
from fedge.simulation.config import RAY_MISSING, SimulationConfig
from fedge.simulation.inprocess import CLIENTS_FILE, Federation, committed, enrolled, start_coordinator
from fedge.simulation.loopback import QUIET_BLAS, realtime_task, vanishing_plan

# What a client may ask of the coordinator's actor: the Coordinator service's calls, and tokens.
CALLS = frozenset(
    {"enroll", "check_in", "model_data", "upload", "advertise_keys", "share_keys", "unmask", "create_tokens"}
)
VANISHED_FILE = "vanished.jsonl"
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's one-machine mode, every address 127.0.0.1


def import_ray() -> Any:
    """Ray, set up first (Ray reads it at import) so that an instance of the run's own, on this
    machine, listens and connects on 127.0.0.1 only: Ray's default is this machine's network
    address, open to the network. A cluster named by RAY_ADDRESS is left to Ray's own choices."""
    if not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault(LOCAL_ONLY, "0")
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    return ray


class CoordinatorHost:
    """The run's coordinator inside an actor, its round loop in a thread (as in the daemon)."""

    def __init__(self, task: TaskConfig, splits: data.Splits, data_dir: str, resume: bool) -> None:
        self.coordinator = start_coordinator(task, splits, Path(data_dir), resume=resume)
        self.stop = threading.Event()
        self.loop = threading.Thread(target=self.coordinator.run, args=(self.stop,), name="fedge-rounds", daemon=True)
        self.loop.start()

    def admin_credential(self) -> str:
        return self.coordinator.admin_credential

    def call(self, method: str, *args: Any) -> tuple[bool, Any]:
        """``(True, reply)``, or for a refusal ``(False, (status name, sentence))``: refusals come
        back as values, since Ray would wrap a raised one."""
        if method not in CALLS:
            raise ValueError(f"no coordinator call {method!r}")
        try:
            return True, local_call(lambda: getattr(self.coordinator, method)(*args))
        except TransportError as refused:
            return False, (refused.code, refused.message)

    def close(self) -> None:
        self.stop.set()
        self.loop.join(timeout=5)
        self.coordinator.close()


class RemoteCoordinator:
    """A ``CoordinatorHost`` actor, seen as the coordinator ``InProcessTransport`` calls."""

    def __init__(self, host: Any) -> None:
        self.host, self.ray = host, import_ray()

    @property
    def admin_credential(self) -> str:
        return result(self.ray, self.host.admin_credential.remote())

    def upload(self, header: Any, data: Any) -> Any:
        """One bytes object: the encoded tensors come as memoryviews, which Ray cannot send."""
        parts = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        return self._call("upload", header, b"".join(parts))

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in CALLS:
            raise AttributeError(method)
        return lambda *args: self._call(method, *args)

    def _call(self, method: str, *args: Any) -> Any:
        answered, value = result(self.ray, self.host.call.remote(method, *args))
        if not answered:
            raise TransportError(*value)
        return value


@dataclass(frozen=True)
class Member:
    """One client of an actor: its index in the run, credential, samples and seed."""

    index: int
    credential: str
    x: np.ndarray
    y: np.ndarray
    seed: list[int]


class Vanished(Exception):
    """Raised where a vanishing agent process would exit (``vanish.VanishingTransport``)."""


def _vanish(code: int) -> None:
    raise Vanished(code)


class ClientHost:
    """Some of the run's clients in one actor, each an ``Agent`` with its own samples."""

    def __init__(self, coordinator: Any, members: list[Member], plan: dict[int, dict[int, str]]) -> None:
        """``plan``: client index -> {round number: the stage it vanishes at} (``--dropout``)."""
        shared = InProcessTransport(RemoteCoordinator(coordinator))
        self.agents: dict[int, Agent] = {}
        for m in members:
            orders = vanish.Orders(plan.get(m.index, {}))
            transport = vanish.VanishingTransport(shared, orders, exit=_vanish) if orders.plan else shared
            trainer = LocalTrainer(m.x, m.y)
            self.agents[m.index] = Agent(transport, m.credential, trainer, platform="simulation", seed=m.seed)
        self.vanished: list[dict[str, Any]] = []

    def play(self) -> list[dict[str, Any]]:
        """Each agent's next step when it is due, until every one has heard that the task
        completed; returns the vanishings."""
        due = [(0.0, turn, index) for turn, index in enumerate(self.agents)]  # first: in the members' order
        while due:
            at, turn, index = heapq.heappop(due)
            time.sleep(max(0.0, at - time.monotonic()))
            try:
                outcome = self.agents[index].attempt()
            except Vanished:
                outcome = self._leave(index)
            except AgentStopped as stopped:
                raise RuntimeError(f"client {index}: {stopped}") from None
            if not outcome.finished:
                heapq.heappush(due, (time.monotonic() + outcome.wait_s, turn, index))
        return self.vanished

    def _leave(self, index: int) -> Outcome:
        """The agent vanished before a stage's request: like a device back after a restart, it sits
        the round out (the coordinator counts it in, and new keys would spoil its neighbours'
        share bundles) and joins the next one; its plan keeps only later rounds, as a retried
        round has the same number."""
        agent = self.agents[index]
        transport = agent.transport
        round_id, number, stage = transport.armed
        agent.left, agent.secure = round_id, None
        later = {n: s for n, s in transport.orders.plan.items() if n > number}
        transport.orders, transport.armed = vanish.Orders(later), None
        self.vanished.append({"client": index, "round": number, "round_id": round_id, "stage": stage})
        return Outcome(wait_s=vanish.SIT_OUT_MS / 1000)


def start_ray(ray: Any) -> None:
    """Joins the cluster RAY_ADDRESS names, or starts one here for the run (``import_ray`` keeps it
    on 127.0.0.1). This process keeps its own SIGTERM handling (``fedge simulate`` ends through
    its cleanup, as on Ctrl-C): Ray's would end it mid-cleanup, with status 1."""
    previous = signal.getsignal(signal.SIGTERM)
    ray.init(
        address=None if os.environ.get("RAY_ADDRESS") else "local",  # never a `ray start` cluster unasked
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,  # not its INFO lines and notices amid the progress bar
        runtime_env={"env_vars": QUIET_BLAS},  # one BLAS thread per actor: an actor is a CPU
    )
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def actors_for(ray: Any, clients: int) -> int:
    """One client actor per CPU of the cluster, and no more than there are clients."""
    return max(1, min(clients, int(ray.cluster_resources().get("CPU", 1))))


def run_rounds(
    config: SimulationConfig, federation: Federation, data_dir: Path, after: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each committed round's metrics while the actors run the federation; ``after``:
    resume the run stopped in ``data_dir`` past that version (same store, same credentials)."""
    ray = import_ray()
    data_dir = data_dir.resolve()  # the coordinator's actor may not start in this process's folder
    vanished = data_dir.parent / VANISHED_FILE
    if after is None:
        vanished.unlink(missing_ok=True)  # a previous run's, in the same folder
    elif not (data_dir / DATABASE).exists():  # said here, not from inside an actor
        raise FileNotFoundError(f"nothing to resume in {data_dir}: no coordinator store there")
    started = not ray.is_initialized()
    if started:
        start_ray(ray)
    coordinator, hosts, store = None, [], None
    try:
        actors = actors_for(ray, len(federation.clients))
        coordinator = coordinator_actor(ray, config, federation, data_dir, after is not None, actors)
        credentials = enrolled(RemoteCoordinator(coordinator), len(federation.clients), data_dir / CLIENTS_FILE)
        store = Store(data_dir)
        hosts = _start_clients(ray, config, federation, coordinator, credentials, after or 0, actors)
        runs = [host.play.remote() for host in hosts]
        seen = after or 0
        while seen < config.rounds:
            everyone_ended = _ended(ray, runs)  # first: whatever they committed is in the store by now
            for metrics in committed(store, seen):  # real waits: waited_s 0, as on the loopback backend
                seen = metrics["version"]
                yield metrics
            if everyone_ended and seen < config.rounds:
                raise RuntimeError(f"every client stopped before round {seen + 1} committed")
        # the clients stop once they hear that the task completed (after its scoring round, if any)
        _record_vanished(vanished, [event for run in runs for event in result(ray, run)])
    finally:
        for host in hosts:
            ray.kill(host)
        try:
            if coordinator is not None:
                result(ray, coordinator.close.remote())  # its store closed whole, for a resume
        finally:  # and the rest even if the coordinator's actor died
            if coordinator is not None:
                ray.kill(coordinator)
            if store is not None:
                store.close()
            if started:
                ray.shutdown()


def coordinator_actor(
    ray: Any, config: SimulationConfig, federation: Federation, data_dir: Path, resume: bool, actors: int
) -> Any:
    """The coordinator's actor, on this node (this runner reads its store), once it has started."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    task = realtime_task(federation, config)
    if task.init_from:  # a folder on this node, named from this process's folder
        task = replace(task, init_from=str(Path(task.init_from).resolve()))
    host = (
        ray.remote(CoordinatorHost)
        .options(num_cpus=0, max_concurrency=actors + 4, scheduling_strategy=here)
        .remote(task, federation.splits, str(data_dir), resume)
    )
    result(ray, host.admin_credential.remote())  # raises what stopped its start
    return host


def _start_clients(
    ray: Any,
    config: SimulationConfig,
    federation: Federation,
    coordinator: Any,
    credentials: list[str],
    after: int,
    actors: int,
) -> list[Any]:
    """The client actors, each with every ``actors``-th client in a shuffled order, the order they
    first check in: the first cohort is a random draw, as on the in-process backend, not the
    lowest indices (a resumed run draws afresh)."""
    clients = len(federation.clients)
    plan = vanishing_plan(config, clients, after) if config.dropout else {}
    words = [config.seed] if not after else [config.seed, after]
    rng = np.random.default_rng([*words, 0x0DE5])
    host = ray.remote(ClientHost).options(num_cpus=1)
    hosts = []
    for first in range(actors):
        mine = [int(i) for i in rng.permutation(np.arange(first, clients, actors))]
        samples = [federation.clients[i] for i in mine]
        members = [Member(i, credentials[i], c.x, c.y, [*words, i]) for i, c in zip(mine, samples, strict=True)]
        hosts.append(host.remote(coordinator, members, {i: plan.get(i, {}) for i in mine}))
    return hosts


def _ended(ray: Any, runs: list[Any]) -> bool:
    """Whether every client actor has ended, after a moment's pause: an actor that failed raises
    its error here. The pause is Python's: a signal that lands in a Ray wait becomes exit status 1."""
    time.sleep(0.05)
    ended, _ = ray.wait(runs, num_returns=len(runs), timeout=0)
    for run in ended:
        result(ray, run)
    return len(ended) == len(runs)


def result(ray: Any, ref: Any) -> Any:
    """What an actor's call returned; what it raised is raised here as itself (Ray's wrapper,
    which carries the actor's traceback, is its cause), so a refusal reads as one sentence."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        if isinstance(cause, Exception):
            raise cause from error
        raise


def _record_vanished(path: Path, events: list[dict[str, Any]]) -> None:
    if events:
        with open(path, "a") as out:
            out.writelines(json.dumps(event) + "\n" for event in sorted(events, key=lambda e: e["round_id"]))
