"""What secure aggregation costs: a SecAgg+ round next to a plain round, measured in one run.

Both rounds run in this process through the coordinator's own round code with N in-process
agents and a no-op trainer (``round_overhead.NoopTrainer``: a zero update, freshly written), so
the difference is exactly what SecAgg+ adds: key agreement, Shamir sharing and sealing,
quantisation, k pairwise masks and the self mask per client, summing uint32 inputs (kept on
disk, to survive a restart), and unmasking. Each round's time is split in two by timing every
agent's turn less the time its requests spent in the coordinator:

    simulated   the whole round, clients taking turns on this machine (as in Flower's simulation)
    coordinator the coordinator's own work: what the service pays per round (timed in the thread
                the clients share, so it starts each request with caches their masking has filled)
    deployed    coordinator work + the slowest client's own work: the round when clients work
                in parallel on their devices, as they do in a deployment (an estimate)

Plain rounds and secure rounds are played in turns, so that a noisy neighbour on the machine
slows both alike. Secure rounds run twice: with fedge's default neighbours for N (k = 28 at
N = 100) and with Flower's (num_shares = 15, i.e. 14 neighbours, t = 8: the anchors' workload,
for the comparison with Flower).

Then the same over loopback gRPC, a daemon and one process per client (``round_overhead``'s
gRPC case), P = 1M, plain and secure: N = 10 (the deployment Flower's anchors measured) and
N = 100, with the daemon's own CPU per round (what the service pays; on this machine the 100
clients' masking shares the daemon's two cores, so the wall-clock round says less).

    python benchmarks/secagg.py                    # N=100, P=1M, 3 rounds each; gRPC N=10, 100 (~5 min)
    python benchmarks/secagg.py --quick            # N=10, P=100k, default k only, no gRPC

Flower's SecAgg+ on this machine (anchors, recorded, not measured here): N=100, P=1M, k=15:
17.9 s per simulated round against 1.65 s without (10.8x), of which 4.5 s is server compute;
deployed (SuperLink, SuperNodes, loopback) N=10, P=1M: 56.9 s against 17.7 s without.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from round_overhead import TASK, Case, NoopTrainer, make_task

from fedge.client.agent import Agent, Outcome
from fedge.client.secagg import SecAggSession
from fedge.client.transport import InProcessTransport
from fedge.server.coordinator import Coordinator
from fedge.server.secagg import automatic_neighbours, automatic_threshold
from fedge.shared import secagg
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.simulation.inprocess import SimulatedClock, play_round

# Flower 1.42 on this machine, recorded in ../shared/anchors/flower/README.md (legacy API, SecAgg+ vs plain):
FLOWER_SECAGG_S, FLOWER_PLAIN_S, FLOWER_SERVER_S = 17.9, 1.65, 4.5  # simulation, N=100, P=1M, k=15, t=8
FLOWER_DEPLOY_SECAGG_S, FLOWER_DEPLOY_PLAIN_S = 56.93, 17.667  # deployment on loopback, N=10, P=1M
FLOWER_K, FLOWER_T = 14, 8  # Flower's num_shares=15 counts the share a client keeps: 14 neighbours


class TimedTransport:
    """The in-process transport, adding up the time its calls spend in the coordinator."""

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner, self.spent = inner, 0.0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.spent += time.perf_counter() - start

        return timed


@dataclass
class TimedAgent:
    """An agent whose turns are timed, less the time its requests spent in the coordinator."""

    agent: Agent
    transport: TimedTransport
    own_s: float = 0.0

    @property
    def secure(self) -> Any:
        return self.agent.secure

    def attempt(self) -> Outcome:
        start, inside = time.perf_counter(), self.transport.spent
        try:
            return self.agent.attempt()
        finally:
            self.own_s += time.perf_counter() - start - (self.transport.spent - inside)


@dataclass
class Timing:
    simulated: list[float] = field(default_factory=list)
    coordinator: list[float] = field(default_factory=list)
    deployed: list[float] = field(default_factory=list)

    def median(self, what: str) -> float:
        return statistics.median(getattr(self, what)[1:])  # the first round, with start-up, excluded


class Federation:
    """One coordinator and its N in-process agents, playing rounds on demand."""

    def __init__(self, case: Case, rounds: int, secure: bool, folder: Path, k: int = 0, t: int = 0) -> None:
        self.task = replace(make_task(case, rounds + 1, secure), secagg_neighbours=k, secagg_threshold=t)
        self.clock = SimulatedClock()
        self.coordinator = Coordinator([self.task], folder, clock=self.clock)
        transport = TimedTransport(InProcessTransport(self.coordinator))
        request = apb.CreateTokensRequest(admin_credential=self.coordinator.admin_credential, count=case.clients)
        self.agents = [
            TimedAgent(Agent(transport, Agent.enroll(transport, token), NoopTrainer(), seed=i), transport)
            for i, token in enumerate(self.coordinator.create_tokens(request).tokens)
        ]
        self.rng = np.random.default_rng(0)
        self.timing = Timing()

    def play(self) -> None:
        for agent in self.agents:
            agent.own_s = 0.0
        start = time.perf_counter()
        play_round(self.coordinator, self.agents, self.rng, self.clock, task_id=TASK)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        server = wall - sum(a.own_s for a in self.agents)
        self.timing.simulated.append(wall)
        self.timing.coordinator.append(server)
        self.timing.deployed.append(server + max(a.own_s for a in self.agents))

    def close(self) -> None:
        try:
            failed = self.coordinator.store.query("SELECT COUNT(*) AS n FROM rounds WHERE phase = 'failed'")[0]["n"]
            if failed:
                raise RuntimeError(f"{failed} round(s) failed")
        finally:
            self.coordinator.close()


def time_rounds(case: Case, rounds: int, flower_k: bool) -> list[Timing]:
    """Plain rounds, secure rounds with the default k and, with ``flower_k``, secure rounds with
    Flower's k and t, taken in turns."""
    with tempfile.TemporaryDirectory() as tmp:
        federations = [
            Federation(case, rounds, secure=False, folder=Path(tmp) / "plain"),
            Federation(case, rounds, secure=True, folder=Path(tmp) / "secure"),
        ]
        if flower_k:
            federations.append(
                Federation(case, rounds, secure=True, folder=Path(tmp) / "flower-k", k=FLOWER_K, t=FLOWER_T)
            )
        try:
            for _ in range(rounds + 1):
                for federation in federations:
                    federation.play()
        finally:
            for federation in federations:
                federation.close()
    return [f.timing for f in federations]


def grpc_rounds(rounds: int, clients: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Loopback gRPC, P=1M: a plain case and a secure one, each in a fresh worker process."""
    import round_overhead

    args = argparse.Namespace(
        rounds=rounds + 1, data_dir=tempfile.gettempdir(), processes=100, inflight=16, profile=False, timeout=900
    )
    log = Path(tempfile.gettempdir()) / "fedge-secagg-bench.log"
    case = Case("grpc", "1M", clients)
    plain = round_overhead.run_case(case, args, log)
    secure = round_overhead.run_case(case, argparse.Namespace(**vars(args), secagg=True), log)
    for result in (plain, secure):
        if "error" in result:
            raise RuntimeError(f"the gRPC case N={clients} failed: {result['error']} (see {log})")
    return plain, secure


def masking_ms(params: int, clients: int, repeats: int = 3) -> tuple[float, int]:
    """One client's cost to quantise and mask a P-parameter update with k neighbours."""
    k = automatic_neighbours(clients)
    t = automatic_threshold(k, clients)
    plan = pb.SecAggPlan(neighbours=k, threshold=t, clip=1.0, max_clients=clients, format=secagg.FORMAT)
    session = SecAggSession(pb.Assignment(round_id=1, secagg=plan), "credential")
    session.index = 0
    peer = secagg.PrivateKey.generate().public_bytes()
    session.peers = {j: pb.Peer(index=j, encryption_key=peer, mask_key=peer) for j in range(1, k + 1)}
    share = secagg.split(bytes(32), 2, [1, 2])[0]
    session.bundles = {j: secagg.ShareBundle(j, 0, share, share) for j in session.peers}
    delta = [np.zeros(params, np.float32)]
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.masked_input(delta, rng)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=10, P=100k, no gRPC")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-grpc", action="store_true", help="in-process rounds only")
    args = parser.parse_args()
    case = Case("inprocess", "100k", 10) if args.quick else Case("inprocess", "1M", 100)
    k = automatic_neighbours(case.clients)
    print(
        f"in-process, no-op trainer, N={case.clients}, P={case.params:,}, median of {args.rounds} rounds "
        f"(plain and secure rounds in turns)"
    )
    # Flower's k and t are its workload at N = 100 only (with 10 clients k = 14 would be capped)
    timings = time_rounds(case, args.rounds, flower_k=not args.quick)
    labels = ["plain", f"k={k}", f"k={FLOWER_K}"][: len(timings)]
    print(f"  {'':12} {labels[0]:>9}" + "".join(f" {label:>9} {'ratio':>7}" for label in labels[1:]))
    for what in ("simulated", "coordinator", "deployed"):
        plain, *secure = (t.median(what) for t in timings)
        print(f"  {what:12} {plain:8.3f}s" + "".join(f" {b:8.3f}s {b / plain:6.1f}x" for b in secure))
    plain, *secure = (t.median("coordinator") for t in timings)
    verdicts = ", ".join(f"{label} {b / plain:.1f}x" for label, b in zip(labels[1:], secure, strict=True))
    met = "met" if all(b <= 2 * plain for b in secure) else "not met"
    print(f"  target: SecAgg+ round <= 2x a plain round -> the coordinator's work: {verdicts} ({met})")
    if not args.quick:
        simulated, server = timings[2].median("simulated"), timings[2].median("coordinator")
        print(
            f"  Flower SecAgg+ (recorded, num_shares={FLOWER_K + 1}, t={FLOWER_T}): {FLOWER_SECAGG_S} s simulated "
            f"({FLOWER_SECAGG_S / FLOWER_PLAIN_S:.1f}x its plain round), {FLOWER_SERVER_S} s of it server compute"
        )
        print(
            f"  -> fedge at k={FLOWER_K}: {FLOWER_SECAGG_S / simulated:.1f}x faster simulated, "
            f"{FLOWER_SERVER_S / server:.1f}x less coordinator work than Flower's server compute (target >= 20x)"
        )
    if not (args.quick or args.no_grpc):
        print("loopback gRPC, a daemon and agent processes, P=1M: median s/round, and the daemon's CPU s/round")
        for clients in (10, 100):
            plain_grpc, secure_grpc = grpc_rounds(args.rounds, clients)
            a, b = plain_grpc["s_per_round"], secure_grpc["s_per_round"]
            ca, cb = plain_grpc["coordinator_cpu_s_per_round"], secure_grpc["coordinator_cpu_s_per_round"]
            met = "met" if cb <= 2 * ca else "not met"
            print(
                f"  N={clients:<3} k={automatic_neighbours(clients)}: plain {a:.3f} s (daemon CPU {ca:.3f} s), "
                f"SecAgg+ {b:.3f} s (daemon CPU {cb:.3f} s): {b / a:.1f}x the round, {cb / ca:.1f}x the daemon's work "
                f"(<= 2x: {met})"
            )
            if clients == 10:
                print(
                    f"        Flower deployment (recorded): plain {FLOWER_DEPLOY_PLAIN_S} s, SecAgg+ "
                    f"{FLOWER_DEPLOY_SECAGG_S} s -> fedge's SecAgg+ round is {FLOWER_DEPLOY_SECAGG_S / b:.0f}x faster "
                    "(target >= 20x)"
                )
    ms, k = masking_ms(1_240_000, case.clients)
    print(f"  client masking, P=1,240,000 (SqueezeNet size), k={k} neighbours: {ms:.0f} ms")


if __name__ == "__main__":
    main()
