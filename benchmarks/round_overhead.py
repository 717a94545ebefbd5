"""Seconds per round of fedge's own round code with a no-op trainer, in-process and over loopback gRPC.

Clients return a zero update at once, so what is timed is everything *but* training: check-in,
selection, the model download, the upload, streaming aggregation, the commit (version files with
fsync, one SQLite transaction) and, over gRPC, the clients' waits between rounds (pace steering).
P is the model's parameter count (the zoo's MLP, its input width solved for P), N the clients per
round (all of them, every round). The zero update is written afresh at every call, as training
writes one.

    in-process   one ``Coordinator`` and N ``Agent``s on ``InProcessTransport``, stepped in turn as
                 ``fedge.simulation.inprocess.run_rounds`` does: the same round code a daemon runs
                 (weights and updates are handed over as buffers, not cut into chunk messages).
    grpc         a real daemon (``fedge.server.daemon.start``) in the case's process (no agents in it), the
                 agents in separate processes (spawned; ``OPENBLAS_NUM_THREADS=1``), each running
                 ``Agent(GrpcTransport(address), ...).run(stop, exit_when_done=True)``.

With N > ``--processes`` (100), agents share processes as threads (1000 Python processes do not fit in
24 GiB); at most ``--inflight`` (16) agents hold model-sized buffers at once (download to end of upload).

Every case runs in a fresh child process so that its peak RSS is its own. Seconds per round are
the intervals between consecutive committed versions (the store's ``versions.created_at``), so
round 1, which includes start-up, is never counted; the median is reported.

Flower: when ``flwr`` is importable here (or ``--flower-python`` names an interpreter that has
it, e.g. a venv under /tmp: never install flwr into the project venv), Flower's simulation is run
on the same workload in the same run with the anchors' own script
(``/work/shared/anchors/flower/bench_sim.py``, copied to a temporary folder), and the ratio is
measured. Otherwise the ratio is taken against the anchors' recorded figures, labelled so.

    python benchmarks/round_overhead.py --quick                 # P=100k,1M × N=10, both backends
    python benchmarks/round_overhead.py                         # the full matrix (≈ 10 min on 2 cores)
    python benchmarks/round_overhead.py --cases inprocess:1M:100,grpc:1M:10,grpc:1M:1000 --rounds 5
    python benchmarks/round_overhead.py --cases inprocess:1M:100 --profile   # cProfile of the in-process case
    python benchmarks/round_overhead.py --cases grpc:1M:100 --secagg --flower off   # secure rounds (SecAgg+)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SIZES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
BACKENDS = ("inprocess", "grpc")
TASK = "bench"
LABELS = tuple(f"c{i}" for i in range(10))
HIDDEN = 64  # the zoo's MLP: flatten → dense 64 relu → dense 64 relu → dense classes

# What the anchors recorded for Flower 1.42.0 on this machine (2 vCPU, 24 GiB), quiet pass 2:
# /work/shared/anchors/flower/results/{sim,deploy}.jsonl. Used only when Flower is not run here.
FLOWER_RECORDED = {
    ("sim", 1_000_000, 100): {"s_per_round": 2.151, "driver_rss_mib": 1355.0, "tree_pss_mib": 1911.3},
    ("sim", 1_000_000, 1000): {"s_per_round": 38.772, "driver_rss_mib": 8172.1, "tree_pss_mib": 8696.8},
    ("deploy", 1_000_000, 10): {"s_per_round": 17.43, "driver_rss_mib": None, "tree_pss_mib": 3686.9},
}
# Which of our cases is compared with which Flower figure, and the target the project states.
COMPARISONS = {
    ("inprocess", "1M", 100): ("sim", "in-process ≥ 10× faster than Flower's simulation (2.15 s)"),
    ("grpc", "1M", 10): ("deploy", "loopback ≤ 1 s/round"),
    ("grpc", "1M", 1000): ("sim", "coordinator peak RSS < 1 GiB"),
}
ANCHORS = Path("/work/shared/anchors/flower")


@dataclass(frozen=True)
class Case:
    backend: str
    size: str
    clients: int

    @property
    def params(self) -> int:
        return mlp_params(input_width(SIZES[self.size]))

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.size}:{self.clients}"


def input_width(target: int) -> int:
    """The MLP input width D whose parameter count is closest to ``target``."""
    fixed = HIDDEN + HIDDEN * HIDDEN + HIDDEN + HIDDEN * len(LABELS) + len(LABELS)
    return max(1, round((target - fixed) / HIDDEN))


def mlp_params(width: int) -> int:
    return width * HIDDEN + HIDDEN + HIDDEN * HIDDEN + HIDDEN + HIDDEN * len(LABELS) + len(LABELS)


def full_matrix() -> list[Case]:
    cases = [Case(b, s, n) for b in BACKENDS for s in SIZES for n in (10, 100)]
    return [*cases, *(Case(b, "1M", 1000) for b in BACKENDS)]


def parse_cases(text: str) -> list[Case]:
    cases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        backend, size, clients = item.split(":")
        if backend not in BACKENDS or size not in SIZES:
            raise SystemExit(f"expected backend:size:clients with backend in {BACKENDS}, size in {list(SIZES)}: {item}")
        cases.append(Case(backend, size, int(clients)))
    return cases


# -- measuring helpers -----------------------------------------------------------------------------
def rss_mib() -> float:
    """This process's resident set now (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """utime + stime of one live process, from /proc (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return 0.0
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


class NoopTrainer:
    """Returns a zero update at once, as a fresh array written at each call, as training writes one.

    Until 2026-12-07 one ``np.zeros`` list served every client: its untouched pages all map the
    kernel's zero page, so the coordinator summed reads of one cached 4 KiB page, not updates in
    memory (in-process P = 1M, N = 100: 0.11–0.13 s per round then, 0.13–0.15 s with this).
    """

    def __call__(
        self, spec_json: str, start: Any, plan: Any, rng: Any, trainable: Any = ()
    ) -> tuple[list[Any], int, dict[str, float]]:
        import numpy as np

        return [np.full(s.shape, 0.0, dtype=s.dtype) for s in start], 1, {}


def make_task(case: Case, rounds: int, secure: bool = False) -> Any:
    """The benchmark's task; ``secure``: SecAgg+ rounds (clip 1.0: the zero update fits)."""
    from fedge.server.config import TaskConfig

    return TaskConfig(
        name=TASK,
        model="mlp",
        input_shape=(input_width(SIZES[case.size]),),
        labels=LABELS,
        rounds=rounds,
        clients_per_round=case.clients,
        min_clients=case.clients,
        over_selection=1.0,
        select_timeout_s=600.0,
        train_deadline_s=600.0,
        lr_schedule="constant",
        secagg=secure,
        secagg_clip=1.0,
    )


def round_times(store: Any) -> dict[str, Any]:
    """Commit-to-commit intervals (rounds 2..R) and each round's own duration, from the store."""
    versions = store.query("SELECT version, created_at FROM versions WHERE task_id = ? ORDER BY version", (TASK,))
    stamps = [row["created_at"] for row in versions if row["version"] >= 1]
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    rows = store.query(
        "SELECT metrics_json FROM rounds WHERE task_id = ? AND phase = 'committed' ORDER BY number", (TASK,)
    )
    metrics = [json.loads(row["metrics_json"]) for row in rows]
    failed = store.query("SELECT COUNT(*) AS n FROM rounds WHERE task_id = ? AND phase = 'failed'", (TASK,))[0]["n"]
    return {
        "interval_s": [round(x, 4) for x in intervals],
        "s_per_round": round(statistics.median(intervals), 4) if intervals else None,
        "duration_s": [round(m["duration_s"], 4) for m in metrics],
        "clients_per_committed_round": [m["clients"] for m in metrics],
        "failed_rounds": int(failed),
    }


def unchanged(coordinator: Any) -> bool:
    """Zero updates under FedAvg leave the model as it was: a check that every update was folded in.

    Secure rounds quantise the zeros (stochastic rounding of the clip range's middle), so each
    round may move a weight by up to one quantisation step per client."""
    import numpy as np

    from fedge.shared.secagg import Quantizer

    state = coordinator.tasks[TASK]
    initial = coordinator.store.load_weights(TASK, 0)
    task, tolerance = state.task, 0.0
    if task.secagg:  # twice the step: float32 rounding of the mean on top
        tolerance = 2 * Quantizer(task.secagg_clip, task.cohort_size).step * state.version
    return all(np.allclose(a, b, rtol=0, atol=tolerance) for a, b in zip(initial, state.weights, strict=True))


# -- the in-process backend --------------------------------------------------------------------------
def run_inprocess(case: Case, rounds: int, data_dir: Path, profile: bool, secure: bool = False) -> dict[str, Any]:
    from fedge.client.agent import Agent
    from fedge.client.transport import InProcessTransport
    from fedge.server.coordinator import Coordinator
    from fedge.shared.proto import admin_pb2 as apb

    baseline = rss_mib()
    busy0, own0, wall0 = busy_cpu_s(), own_cpu_s(), time.perf_counter()
    coordinator = Coordinator([make_task(case, rounds, secure)], data_dir)
    try:
        transport = InProcessTransport(coordinator)
        request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=case.clients)
        trainer = NoopTrainer()
        agents = []
        for index, token in enumerate(coordinator.create_tokens(request).tokens):
            credential = Agent.enroll(transport, token, name=f"bench-{index}", platform="bench")
            agents.append(Agent(transport, credential, trainer, platform="bench", seed=index))
        state = coordinator.tasks[TASK]
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
        while not state.completed:
            version = state.version
            if profiler is not None and version == 1:  # profile rounds 2..R, as they are timed
                profiler.enable()
            for _ in range(20):  # a plain round takes one pass over the agents, a secure one a few
                for agent in agents:  # the order does not matter here: every client is in every round
                    agent.step()
                    coordinator.tick()
                coordinator.tick()
                if state.version != version:
                    break
            else:
                raise RuntimeError(f"20 passes over all {case.clients} agents committed no round")
        if profiler is not None:
            profiler.disable()
            print_profile(profiler)
        result = round_times(coordinator.store)
        result["model_unchanged"] = unchanged(coordinator)
    finally:
        coordinator.close()
    wall = time.perf_counter() - wall0
    peak = peak_rss_mib()
    result.update(
        memory_what="benchmark process (coordinator + all agents), peak RSS via getrusage",
        peak_rss_mib=round(peak, 1),
        baseline_rss_mib=round(baseline, 1),
        growth_mib=round(peak - baseline, 1),
        foreign_cpu_frac=foreign(busy0, own0, wall),
    )
    return result


def print_profile(profiler: Any) -> None:
    import io
    import pstats

    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(25)
        print(out.getvalue(), file=sys.stderr)


def foreign(busy0: float, own0: float, wall: float) -> float:
    """Share of the machine's cores that processes outside this run used meanwhile."""
    other = max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0))
    return round(other / (wall * (os.cpu_count() or 1)), 3)


# -- the loopback gRPC backend -------------------------------------------------------------------------
class GatedTransport:
    """A ``GrpcTransport`` whose model transfers hold a slot of a semaphore shared by all agent processes.

    A slot is taken when the download starts and given back when the upload ends, so at most
    ``--inflight`` clients hold model-sized buffers at once; check-ins are never gated.
    """

    def __init__(self, inner: Any, gate: Any) -> None:
        self.inner, self.gate = inner, gate
        self.check_ins = 0

    def __getattr__(self, name: str) -> Any:  # the secure stages' calls: never gated
        return getattr(self.inner, name)

    def enroll(self, request: Any) -> Any:
        return self.inner.enroll(request)

    def check_in(self, request: Any) -> Any:
        self.check_ins += 1
        return self.inner.check_in(request)

    def download_model(self, request: Any, size: int) -> Any:
        self.gate.acquire()
        try:
            return self.inner.download_model(request, size)
        except BaseException:
            self.gate.release()
            raise

    def upload_update(self, header: Any, parts: Any) -> Any:
        try:
            return self.inner.upload_update(header, parts)
        finally:
            self.gate.release()


def agent_process(address: str, tokens: list[str], first: int, gate: Any, stop: Any, ready: Any, counts: Any) -> None:
    """One agent process: one thread per agent, each with its own channel and credential."""
    from fedge.client.agent import Agent
    from fedge.client.transport import GrpcTransport

    trainer = NoopTrainer()
    agents = []
    for offset, token in enumerate(tokens):
        transport = GrpcTransport(address, max_message_mb=16, timeout_s=300)
        credential = Agent.enroll(transport, token, name=f"bench-{first + offset}", platform="bench")
        agents.append(
            Agent(GatedTransport(transport, gate), credential, trainer, platform="bench", seed=first + offset)
        )
    ready.release()
    threads = [threading.Thread(target=a.run, args=(stop,), kwargs={"exit_when_done": True}) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts.put(sum(agent.transport.check_ins for agent in agents))


def run_grpc(
    case: Case, rounds: int, data_dir: Path, processes: int, inflight: int, secure: bool = False
) -> dict[str, Any]:
    import multiprocessing

    from fedge.server.config import ServerSettings
    from fedge.server.daemon import start
    from fedge.shared.proto import admin_pb2 as apb

    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # the spawned agents inherit it before they import numpy
    if secure:  # every member must get through key exchange before anyone uploads: a gate would deadlock
        inflight = max(inflight, case.clients)
    context = multiprocessing.get_context("spawn")
    gate, stop, ready = context.Semaphore(inflight), context.Event(), context.Semaphore(0)
    counts = context.Queue()
    baseline = rss_mib()
    busy0, own0, wall0 = busy_cpu_s(), own_cpu_s(), time.perf_counter()
    settings = ServerSettings(host="127.0.0.1", port=0, data_dir=data_dir, max_message_mb=16, chunk_kb=512)
    running = start(settings, [make_task(case, rounds, secure)])
    coordinator = running.coordinator
    children = []
    try:
        request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=case.clients)
        tokens = list(coordinator.create_tokens(request).tokens)
        count = min(processes, case.clients)
        per = math.ceil(case.clients / count)
        for first in range(0, case.clients, per):
            child = context.Process(
                target=agent_process,
                args=(running.address, tokens[first : first + per], first, gate, stop, ready, counts),
                daemon=True,
            )
            child.start()
            children.append(child)
        for _ in children:
            ready.acquire()
        started = time.perf_counter() - wall0
        deadline = time.monotonic() + 3600
        state, first = coordinator.tasks[TASK], None
        while not coordinator.completed:
            if any(child.exitcode not in (None, 0) for child in children):
                raise RuntimeError("an agent process failed; see the log")
            if time.monotonic() > deadline or not any(child.is_alive() for child in children):
                raise RuntimeError("the rounds did not complete (agents gone or out of time)")
            if first is None and state.version >= 1:  # CPU from here on is that of the timed rounds
                first = (state.version, cpu_split(children))
            time.sleep(0.02)
        result = round_times(coordinator.store)
        if first is not None and state.version > first[0]:
            (coordinator_cpu, agents_cpu), timed = cpu_split(children), state.version - first[0]
            result["coordinator_cpu_s_per_round"] = round((coordinator_cpu - first[1][0]) / timed, 3)
            result["agents_cpu_s_per_round"] = round((agents_cpu - first[1][1]) / timed, 3)
        result["model_unchanged"] = unchanged(coordinator)
    finally:
        stop.set()
        check_ins = []
        with contextlib.suppress(Exception):
            check_ins = [counts.get(timeout=30) for _ in children]
        for child in children:
            child.join(timeout=10)
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
        running.stop(grace=1.0)
    wall = time.perf_counter() - wall0
    peak = peak_rss_mib()
    result.update(
        memory_what="coordinator daemon process (no agents in it), peak RSS via getrusage",
        peak_rss_mib=round(peak, 1),
        baseline_rss_mib=round(baseline, 1),
        growth_mib=round(peak - baseline, 1),
        agent_processes=len(children),
        agents_per_process=per,
        inflight=inflight,
        startup_s=round(started, 2),
        check_ins_per_client_round=round(sum(check_ins) / (case.clients * rounds), 1) if check_ins else None,
        largest_agent_peak_rss_mib=round(peak_rss_mib(resource.RUSAGE_CHILDREN), 1),
        foreign_cpu_frac=foreign(busy0, own0, wall),
    )
    return result


def cpu_split(children: list[Any]) -> tuple[float, float]:
    """CPU seconds so far of this process (the daemon) and of all agent processes together."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime, sum(process_cpu_s(child.pid) for child in children)


def worker(spec: dict[str, Any]) -> None:
    case = Case(spec["backend"], spec["size"], spec["clients"])
    data_dir = Path(spec["data_dir"])
    shutil.rmtree(data_dir, ignore_errors=True)
    start = time.perf_counter()
    if case.backend == "inprocess":
        result = run_inprocess(case, spec["rounds"], data_dir, spec["profile"], spec.get("secagg", False))
    else:
        result = run_grpc(
            case, spec["rounds"], data_dir, spec["processes"], spec["inflight"], spec.get("secagg", False)
        )
    shutil.rmtree(data_dir, ignore_errors=True)
    result.update(asdict(case), params=case.params, rounds=spec["rounds"], wall_s=round(time.perf_counter() - start, 1))
    print("RESULT " + json.dumps(result), flush=True)


# -- Flower, run here with the anchors' script -----------------------------------------------------------
def flower_python(explicit: str | None) -> str | None:
    candidates = [explicit, os.environ.get("FEDGE_FLOWER_PYTHON"), sys.executable]
    for python in filter(None, candidates):
        probe = subprocess.run([python, "-c", "import flwr, ray"], capture_output=True, timeout=120, check=False)
        if probe.returncode == 0:
            return python
    return None


def run_flower(python: str, params: int, clients: int, rounds: int, timeout: int, log: Path) -> dict[str, Any]:
    """Flower 1.42 simulation (Message-API FedAvg, Ray) on the same P, N and rounds; the anchors' script."""
    with tempfile.TemporaryDirectory(prefix="fedge-flower-") as scratch:
        for name in ("bench_sim.py", "benchlib.py", "sim_apps.py"):
            shutil.copy(ANCHORS / name, scratch)
        Path("/tmp/flower-anchor").mkdir(exist_ok=True)  # the anchors' scripts keep their scratch files there
        out = Path(scratch) / "result.jsonl"
        env = {
            **os.environ,
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_HOME": str(Path(scratch) / "flwr_home"),
            "BENCH_RAY_TMP": str(Path(scratch) / "ray"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        command = [python, "bench_sim.py", "--api", "msg", "--P", str(params), "--N", str(clients)]
        command += ["--rounds", str(rounds), "--out", str(out)]
        with open(log, "a") as sink:
            subprocess.run(command, cwd=scratch, env=env, stdout=sink, stderr=sink, timeout=timeout, check=True)
        record = json.loads(out.read_text().splitlines()[-1])
    return {
        "s_per_round": record["median_s_excl_first"],
        "driver_rss_mib": record["driver_maxrss_mib"],
        "tree_pss_mib": record["peak_tree_pss_mib"],
        "foreign_cpu_frac": record["foreign_cpu_frac"],
        "round_s_all": record["round_s_all"],
    }


# -- the driver ----------------------------------------------------------------------------------------------
def run_case(case: Case, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    spec = {
        **asdict(case),
        "rounds": args.rounds,
        "data_dir": str(Path(args.data_dir) / f"fedge-bench-{os.getpid()}-{case.backend}"),
        "processes": args.processes,
        "inflight": args.inflight,
        "profile": args.profile,
        "secagg": getattr(args, "secagg", False),
    }
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    with open(log, "a") as sink:
        sink.write(f"\n=== {case.label} ===\n")
        sink.flush()
        # A session of its own: on a timeout the worker and every agent process it spawned go together.
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, text=True, start_new_session=True)
        try:
            stdout, _ = child.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            stop_group(child)
            return {**asdict(case), "params": case.params, "error": f"timed out after {args.timeout} s"}
        except BaseException:
            stop_group(child)
            raise
        finally:
            shutil.rmtree(spec["data_dir"], ignore_errors=True)
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {**asdict(case), "params": case.params, "error": f"exit status {child.returncode}; see {log}"}


def stop_group(child: subprocess.Popen) -> None:
    """SIGTERM to the worker's process group (it stops its agents), SIGKILL to what is left after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.communicate()


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if value < 10 else f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | P | N | s/round (median) | rounds timed | coordinator peak RSS MiB | growth MiB | foreign CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['params']:,} | {r['clients']} | {r['error']} | | | | |")
            continue
        ok = (
            r["model_unchanged"] and r["failed_rounds"] == 0 and set(r["clients_per_committed_round"]) == {r["clients"]}
        )
        peak = f"{r['peak_rss_mib']:,.0f}" + (" (process)" if r["backend"] == "inprocess" else " (daemon)")
        lines.append(
            f"| {r['backend']} | {r['params']:,} | {r['clients']} | {r['s_per_round']:.3f}{'' if ok else ' ⚠'} "
            f"| {len(r['interval_s'])} | {peak} | {r['growth_mib']:,.0f} | {r['foreign_cpu_frac']:.0%} |"
        )
    return "\n".join(lines)


def speed(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}× faster" if ours <= theirs else f"{ours / theirs:.1f}× slower"


def comparisons(results: list[dict[str, Any]], flower: dict[tuple[str, int, int], dict[str, Any]]) -> str:
    """Ratios against Flower: the anchors' recorded figure always, and Flower measured here when it was run."""
    lines = []
    for r in results:
        key = (r["backend"], next(s for s, p in SIZES.items() if abs(p - r["params"]) < 100), r["clients"])
        if key not in COMPARISONS or "error" in r:
            continue
        mode, target = COMPARISONS[key]
        anchor_key = (mode, SIZES[key[1]], r["clients"])
        recorded, measured = FLOWER_RECORDED[anchor_key], flower.get(anchor_key)
        ours, busy = r["s_per_round"], r["foreign_cpu_frac"]
        lines.append(f"- {r['backend']} P={key[1]} N={r['clients']}: {ours:.3f} s/round (foreign CPU {busy:.0%})")
        lines.append(
            f"  - vs Flower {mode} {recorded['s_per_round']:.2f} s/round (recorded, not measured in this run): "
            f"**{speed(recorded['s_per_round'], ours)}**"
        )
        if measured:
            lines.append(
                f"  - vs Flower {mode} {measured['s_per_round']:.2f} s/round (measured in this run, foreign CPU "
                f"{measured['foreign_cpu_frac']:.0%}): **{speed(measured['s_per_round'], ours)}**"
            )
        if key == ("inprocess", "1M", 100):
            bound = recorded["s_per_round"] / 10
            lines.append(f"  - target {target}, i.e. ≤ {bound:.3f} s: {'met' if ours <= bound else 'NOT met'}")
        elif key == ("grpc", "1M", 10):
            lines.append(f"  - target {target}: {'met' if ours <= 1.0 else 'NOT met'}")
        else:
            memory, source = r["peak_rss_mib"], measured or recorded
            driver = fmt(source.get("driver_rss_mib"))
            lines.append(
                f"  - coordinator peak RSS {memory:,.0f} MiB vs Flower's driver {driver} MiB "
                f"(whole process tree PSS {fmt(source.get('tree_pss_mib'))} MiB, "
                f"{'measured' if measured else 'recorded'}); target {target}: {'met' if memory < 1024 else 'NOT met'}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="P=100k and 1M, N=10, both backends (under a minute)")
    parser.add_argument("--cases", help="comma-separated backend:size:clients, e.g. inprocess:1M:100,grpc:1M:10")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case; rounds 2..R are timed (default 5)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the least disturbed one is shown")
    parser.add_argument("--processes", type=int, default=100, help="gRPC: at most this many agent processes")
    parser.add_argument("--inflight", type=int, default=16, help="gRPC: clients holding model buffers at once")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per case before it is abandoned")
    parser.add_argument("--data-dir", default=tempfile.gettempdir(), help="where the coordinators' stores go")
    parser.add_argument("--flower", choices=("auto", "off"), default="auto", help="run Flower here when available")
    parser.add_argument("--flower-python", help="an interpreter with flwr and ray (default: $FEDGE_FLOWER_PYTHON)")
    parser.add_argument(
        "--flower-cases", default="1M:100", help="Flower simulation cases to measure, size:clients (1M:1000: ~5 min)"
    )
    parser.add_argument("--profile", action="store_true", help="in-process: print a cProfile of rounds 2..R")
    parser.add_argument("--secagg", action="store_true", help="secure rounds (SecAgg+, the default k and t)")
    parser.add_argument("--out", help="append one JSON line per case to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        # SIGTERM unwinds the worker through its finally blocks, which stop the agents and the daemon.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        worker(json.loads(args.worker))
        return
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: round 1 includes start-up and is not timed")
    if args.cases:
        cases = parse_cases(args.cases)
    elif args.quick:
        cases = [Case(b, s, 10) for b in BACKENDS for s in ("100k", "1M")]
    else:
        cases = full_matrix()
    log = Path(tempfile.gettempdir()) / f"fedge-round-overhead-{os.getpid()}.log"
    print(f"{len(cases)} case(s), {args.rounds} rounds each; logs in {log}", flush=True)
    results = []
    for case in cases:
        runs = []
        for _ in range(args.repeat):
            result = run_case(case, args, log)
            runs.append(result)
            shown = (
                result.get("error")
                or f"{result['s_per_round']:.3f} s/round, peak RSS {result['peak_rss_mib']:,.0f} MiB, "
                f"foreign CPU {result['foreign_cpu_frac']:.0%}"
            )
            print(f"  {case.label:<20} P={case.params:,}: {shown}", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(result) + "\n")
        # On a shared machine, keep the run that other tenants disturbed least (as the Flower anchors did).
        results.append(min(runs, key=lambda r: ("error" in r, r.get("foreign_cpu_frac", 1.0))))
    flower: dict[tuple[str, int, int], dict[str, Any]] = {}
    python = flower_python(args.flower_python) if args.flower == "auto" and ANCHORS.exists() else None
    if python:
        for item in filter(None, args.flower_cases.split(",")):
            size, clients = item.split(":")
            print(f"  Flower simulation P={size} N={clients} ({python}) ...", flush=True)
            try:
                measured = run_flower(python, SIZES[size], int(clients), args.rounds, args.timeout, log)
            except (subprocess.SubprocessError, OSError, KeyError, ValueError) as error:
                print(f"    failed: {error}; see {log}", flush=True)
                continue
            flower[("sim", SIZES[size], int(clients))] = measured
            print(f"    {json.dumps(measured)}", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps({"backend": "flower-sim", "params": SIZES[size], "clients": int(clients),
                                        **measured}) + "\n")  # fmt: skip
    elif args.flower == "auto":
        print("  flwr is not importable here (and no --flower-python): Flower figures are the anchors' recorded ones")
    print()
    print(table(results))
    print()
    print(comparisons(results, flower) or "(no case of this run has a Flower comparison)")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
