"""What secure aggregation costs: a SecAgg+ round next to a plain round, measured in one run.

Both rounds run in this process through the coordinator's own round code with N in-process
agents and a no-op trainer (``round_overhead.NoopTrainer``), so the difference is exactly what
SecAgg+ adds: key agreement, Shamir sharing and sealing, quantisation, k pairwise masks and
the self mask per client, summing uint32 inputs (kept on disk, to survive a restart), and
unmasking. Each round's time is split in two by timing every agent's turn less the time its
requests spent in the coordinator:

    simulated   the whole round, clients taking turns on this machine (as in Flower's simulation)
    coordinator the coordinator's own work: what the service pays per round
    deployed    coordinator work + the slowest client's own work: the round when clients work
                in parallel on their devices, as they do in a deployment (an estimate)

    python benchmarks/secagg.py                    # N=100, P=1M, 3 rounds each; masking at P=1.24M
    python benchmarks/secagg.py --quick            # N=10, P=100k

Flower's SecAgg+ on this machine (anchors, recorded, not measured here): N=100, P=1M, k=15:
17.9 s per simulated round against 1.65 s without (10.8x), of which 4.5 s is server compute.
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

FLOWER_SECAGG_S, FLOWER_PLAIN_S, FLOWER_SERVER_S = 17.9, 1.65, 4.5  # N=100, P=1M (anchors/flower/README.md)


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


def time_rounds(case: Case, rounds: int, secure: bool) -> Timing:
    task = replace(make_task(case, rounds + 1), secagg=secure, secagg_clip=1.0)
    timing = Timing()
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimulatedClock()
        coordinator = Coordinator([task], Path(tmp), clock=clock)
        try:
            transport = TimedTransport(InProcessTransport(coordinator))
            request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=case.clients)
            agents = [
                TimedAgent(Agent(transport, Agent.enroll(transport, token), NoopTrainer(), seed=i), transport)
                for i, token in enumerate(coordinator.create_tokens(request).tokens)
            ]
            rng = np.random.default_rng(0)
            while not coordinator.tasks[TASK].completed:
                for agent in agents:
                    agent.own_s = 0.0
                start = time.perf_counter()
                play_round(coordinator, agents, rng, clock, task_id=TASK)  # type: ignore[arg-type]
                wall = time.perf_counter() - start
                server = wall - sum(a.own_s for a in agents)
                timing.simulated.append(wall)
                timing.coordinator.append(server)
                timing.deployed.append(server + max(a.own_s for a in agents))
            failed = coordinator.store.query("SELECT COUNT(*) AS n FROM rounds WHERE phase = 'failed'")[0]["n"]
            if failed:
                raise RuntimeError(f"{failed} round(s) failed")
        finally:
            coordinator.close()
    return timing


def masking_ms(params: int, clients: int, repeats: int = 3) -> tuple[float, int]:
    """One client's cost to quantise and mask a P-parameter update with k neighbours."""
    k = automatic_neighbours(clients)
    t = automatic_threshold(k, clients)
    plan = pb.SecAggPlan(neighbours=k, threshold=t, clip=1.0, max_clients=clients)
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
    parser.add_argument("--quick", action="store_true", help="N=10, P=100k")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    case = Case("inprocess", "100k", 10) if args.quick else Case("inprocess", "1M", 100)
    k = automatic_neighbours(case.clients)
    print(f"in-process, no-op trainer, N={case.clients}, P={case.params:,}, k={k}, median of {args.rounds} rounds")
    plain = time_rounds(case, args.rounds, secure=False)
    secure = time_rounds(case, args.rounds, secure=True)
    print(f"  {'':12} {'plain':>9} {'SecAgg+':>9} {'ratio':>7}")
    for what in ("simulated", "coordinator", "deployed"):
        a, b = plain.median(what), secure.median(what)
        print(f"  {what:12} {a:8.3f}s {b:8.3f}s {b / a:6.1f}x")
    print("  target: SecAgg+ round <= 2x a plain round")
    if not args.quick:
        simulated, server = secure.median("simulated"), secure.median("coordinator")
        print(
            f"  Flower SecAgg+ (recorded, k=15): {FLOWER_SECAGG_S} s simulated "
            f"({FLOWER_SECAGG_S / FLOWER_PLAIN_S:.1f}x "
            f"its plain round), {FLOWER_SERVER_S} s server compute -> fedge is {FLOWER_SECAGG_S / simulated:.1f}x "
            f"faster simulated, {FLOWER_SERVER_S / server:.1f}x on the coordinator's side (target >= 20x)"
        )
    ms, k = masking_ms(1_240_000, case.clients)
    print(f"  client masking, P=1,240,000 (SqueezeNet size), k={k} neighbours: {ms:.0f} ms")


if __name__ == "__main__":
    main()
