"""What secure aggregation costs: a SecAgg+ round next to a plain round, measured in one run.

Both rounds run in this process through the coordinator's own round code with N in-process
agents and a no-op trainer (``round_overhead.NoopTrainer``), so the difference is exactly what
SecAgg+ adds: key agreement, Shamir sharing and sealing, quantisation, k pairwise masks and
the self mask per client, summing uint32 inputs, and unmasking. The clients' work runs one
after another on this machine, as in Flower's simulation; on devices it runs in parallel, so
the client masking cost is also printed on its own.

    python benchmarks/secagg.py                    # N=100, P=1M, 3 rounds each; masking at P=1.24M
    python benchmarks/secagg.py --quick            # N=10, P=100k

Flower's SecAgg+ on this machine (anchors, recorded, not measured here): N=100, P=1M:
17.9 s per round against 1.65 s without, 10.8x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from round_overhead import TASK, Case, NoopTrainer, make_task

from fedge.client.agent import Agent
from fedge.client.secagg import SecAggSession
from fedge.client.transport import InProcessTransport
from fedge.server.coordinator import Coordinator
from fedge.server.secagg import automatic_neighbours, automatic_threshold
from fedge.shared import secagg
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.simulation.inprocess import SimulatedClock, play_round

FLOWER_SECAGG_S, FLOWER_PLAIN_S = 17.9, 1.65  # N=100, P=1M (anchors/flower/results/secagg_check.jsonl)


def seconds_per_round(case: Case, rounds: int, secure: bool) -> float:
    """Median wall seconds per committed round (the first, with start-up, excluded)."""
    from dataclasses import replace

    task = replace(make_task(case, rounds + 1), secagg=secure, secagg_clip=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimulatedClock()
        coordinator = Coordinator([task], Path(tmp), clock=clock)
        try:
            transport = InProcessTransport(coordinator)
            request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=case.clients)
            trainer = NoopTrainer()
            agents = [
                Agent(transport, Agent.enroll(transport, token), trainer, seed=i)
                for i, token in enumerate(coordinator.create_tokens(request).tokens)
            ]
            times = []
            rng = np.random.default_rng(0)
            while not coordinator.tasks[TASK].completed:
                start = time.perf_counter()
                play_round(coordinator, agents, rng, clock, task_id=TASK)
                times.append(time.perf_counter() - start)
            failed = coordinator.store.query("SELECT COUNT(*) AS n FROM rounds WHERE phase = 'failed'")[0]["n"]
            if failed:
                raise RuntimeError(f"{failed} round(s) failed")
        finally:
            coordinator.close()
    return statistics.median(times[1:])


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
    print(f"in-process, no-op trainer, N={case.clients}, P={case.params:,}, median of {args.rounds} rounds")
    plain = seconds_per_round(case, args.rounds, secure=False)
    secure = seconds_per_round(case, args.rounds, secure=True)
    print(f"  plain round      {plain:8.3f} s")
    print(f"  SecAgg+ round    {secure:8.3f} s   ({secure / plain:.1f}x plain; target <= 2x)")
    if not args.quick:
        print(
            f"  Flower SecAgg+   {FLOWER_SECAGG_S:8.3f} s   ({FLOWER_SECAGG_S / FLOWER_PLAIN_S:.1f}x its plain round; "
            f"recorded, not measured here) -> fedge is {FLOWER_SECAGG_S / secure:.1f}x faster (target >= 20x)"
        )
    ms, k = masking_ms(1_240_000, case.clients)
    print(f"  client masking, P=1,240,000 (SqueezeNet size), k={k} neighbours: {ms:.0f} ms")


if __name__ == "__main__":
    main()
