"""``fedge simulate``: run a whole federation on this machine and report how it learned."""

from __future__ import annotations

import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from fedge.cli.output import table_console
from fedge.simulation.config import SimulationConfig as DEFAULTS  # its class attributes are the defaults

# fedge.server.strategies.STRATEGIES, spelled out: `fedge client` imports this module but never the server
STRATEGY_NAMES = "fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, fedexp, fednova, median, trimmed_mean, krum"


class ModelName(StrEnum):
    mlp = "mlp"
    har_cnn1d = "har-cnn1d"
    digits_cnn = "digits-cnn"
    squeezenet_mini = "squeezenet-mini"


class Backend(StrEnum):
    inprocess = "inprocess"
    grpc = "grpc"
    ray = "ray"


class PublishPolicy(StrEnum):
    best = "best"
    every = "every"
    never = "never"


class OptimizerName(StrEnum):
    sgd = "sgd"
    adam = "adam"


DEFAULT_OPTIMIZER = OptimizerName(DEFAULTS.optimizer)
DEFAULT_PUBLISH = PublishPolicy(DEFAULTS.publish)


def simulate(
    dataset: Annotated[
        str,
        typer.Option(
            help="Real smartwatch IMU (watch), fashion-mnist, synthetic-imu; or your own samples: a data folder "
            "(docs/client-data.md), or the output of `fedge data split` (one client per client-NNN/ folder, "
            "scored on its heldout/).",
        ),
    ] = "watch",
    model: Annotated[
        ModelName | None,
        typer.Option(help="Zoo model (default: har-cnn1d for sensors, digits-cnn for images).", show_default=False),
    ] = None,
    partition: Annotated[
        str | None,
        typer.Option(
            help="iid | dirichlet:ALPHA | natural (one client per subject) (default: natural for sensors, else iid).",
            show_default=False,
        ),
    ] = None,
    clients: Annotated[
        int | None,
        typer.Option(help="Number of clients (default: one per subject for natural, else 10).", show_default=False),
    ] = None,
    clients_per_round: Annotated[
        int | None, typer.Option(help="Cohort size per round (default: every client).", show_default=False)
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="Federated rounds (default: 30 for sensors, 10 for images).", show_default=False)
    ] = None,
    local_epochs: Annotated[
        int | None,
        typer.Option(
            help="Epochs each client trains per round (default: 2 for sensors, 1 for images).", show_default=False
        ),
    ] = None,
    local_steps: Annotated[
        int,
        typer.Option(
            help="Optimiser steps each client takes per round, whatever its data's size, instead of "
            "--local-epochs (0: epochs).",
        ),
    ] = DEFAULTS.local_steps,
    holdout: Annotated[
        float,
        typer.Option(
            help="Fraction of its samples each client keeps aside to score every model it receives "
            "(federated evaluation: eval_accuracy per round).",
        ),
    ] = DEFAULTS.holdout,
    batch_size: Annotated[int, typer.Option(help="Local batch size.")] = DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option(help="Local learning rate.")] = DEFAULTS.lr,
    optimizer: Annotated[OptimizerName, typer.Option(help="Local optimiser.")] = DEFAULT_OPTIMIZER,
    logit_adjustment: Annotated[
        bool,
        typer.Option(
            "--logit-adjustment",
            help="Clients train against their own label frequencies (balanced softmax): less drift under label skew.",
        ),
    ] = False,
    strategy: Annotated[str, typer.Option(help=f"{STRATEGY_NAMES}.")] = DEFAULTS.strategy,
    strategy_option: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy-option",
            "-S",
            help="Strategy parameter as KEY=VALUE, e.g. -S server_lr=0.5 (repeatable).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Use at most this many training samples (fashion-mnist), for quick runs.", show_default=False
        ),
    ] = None,
    centralized: Annotated[
        bool, typer.Option("--centralized", help="Also train on the pooled data for the same budget: the upper bound.")
    ] = False,
    backend: Annotated[
        Backend,
        typer.Option(
            help="inprocess: clients take turns in this process; grpc: a real daemon and a process per client; "
            "ray: the coordinator and the clients as Ray actors, here or on the cluster RAY_ADDRESS names."
        ),
    ] = Backend.inprocess,
    secagg: Annotated[
        bool, typer.Option("--secagg", help="Secure aggregation: the coordinator only ever sees the sum of updates.")
    ] = False,
    dropout: Annotated[
        float,
        typer.Option(
            help="With --secagg: fraction of clients that vanish each round, at a random stage "
            "(grpc: the client process exits there, and is restarted for the next round; "
            "ray: the client drops the round, and joins the next)."
        ),
    ] = 0.0,
    dp_clip: Annotated[
        float, typer.Option(help="Differential privacy: L2 clip of each client's update (0: off).")
    ] = 0.0,
    dp_noise: Annotated[
        float,
        typer.Option(help="Noise multiplier z: Gaussian noise z × dp-clip on the sum (on devices with --secagg)."),
    ] = 0.0,
    publish: Annotated[
        PublishPolicy,
        typer.Option(
            help="Publish signed ONNX models (fp32 and int8) into OUT's registry: each version that improves "
            "held-out accuracy (best), every 5th and the last (every), or none. See `fedge models`."
        ),
    ] = DEFAULT_PUBLISH,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Fine-tuning: start from a published model's folder (e.g. runs/a/coordinator/registry/simulation/9).",
            show_default=False,
        ),
    ] = None,
    train_layers: Annotated[
        str,
        typer.Option(help="Fine-tuning: comma-separated layers the clients train, e.g. logits (default: all)."),
    ] = "",
    seed: Annotated[int, typer.Option(help="Seed for data splits, initial weights and shuffling.")] = DEFAULTS.seed,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/simulate-<time>).", show_default=False)
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Carry on the stopped run in --out from its last committed round: give the command it was "
            "started with, plus --resume.",
        ),
    ] = False,
) -> None:
    """Simulate a federation: N clients, R rounds, held-out accuracy per round.

    Writes metrics.jsonl (one line per round), summary.json and plot.png to --out.
    """
    from fedge.cli.data import loader_options
    from fedge.simulation import SimulationConfig, run
    from fedge.simulation.runner import previous_records

    config = SimulationConfig(
        dataset=dataset,
        model=model.value if model else None,
        partition=partition,
        clients=clients,
        clients_per_round=clients_per_round,
        rounds=rounds,
        local_epochs=local_epochs,
        local_steps=local_steps,
        holdout=holdout,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer.value,
        logit_adjustment=logit_adjustment,
        strategy=strategy,
        strategy_options=parse_options(strategy_option or []),
        dataset_options=loader_options(dataset, limit),
        seed=seed,
        centralized=centralized,
        backend=backend.value,
        secagg=secagg,
        dropout=dropout,
        dp_clip=dp_clip,
        dp_noise=dp_noise,
        publish=publish.value,
        init_from=str(init_from or ""),
        train_layers=tuple(layer.strip() for layer in train_layers.split(",") if layer.strip()),
    )
    if resume and out is None:
        raise ValueError("--resume needs --out: the folder of the run to carry on")
    out = out or Path("runs") / time.strftime("simulate-%Y%m%d-%H%M%S")
    done = len(previous_records(out, config)) if resume else 0  # checks the settings before the data loads
    console = table_console()
    console.print(
        Text("fedge simulate", "bold"),
        f": {config.dataset}, {config.model}, partition {config.partition}, "
        f"{config.rounds} rounds × {config.local_work()}, {config.strategy}"
        f"{', secure aggregation' if config.secagg else ''}, {config.backend} → {out}"
        f"{f' (resumed after round {done})' if resume else ''}",
        sep="",
        soft_wrap=True,
    )
    exit_on_termination()
    summary = _run_with_progress(run, config, out, console, resume, done)
    console.print(summary_table(summary))
    console.print(f"Wrote {out / 'metrics.jsonl'}, {out / 'summary.json'} and {out / 'plot.png'}", soft_wrap=True)
    if summary.get("published"):
        console.print(
            f"Published {summary['published']}: list them with `fedge models list --data-dir {out}`", soft_wrap=True
        )


def exit_on_termination() -> None:
    """SIGTERM or SIGHUP ends a run as Ctrl-C does, through its cleanup (the loopback backend stops
    its daemon and agents, the metrics file is closed), with the exit status 128 + the signal.
    The default would end this process alone and leave the loopback's processes running."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))


def _run_with_progress(
    run: Any, config: Any, out: Path, console: Console, resume: bool = False, done: int = 0
) -> dict[str, Any]:
    """``done``: the rounds a resumed run had already reported."""
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        rounds = progress.add_task("federated", total=config.rounds, completed=done, status="")
        central = None
        if config.centralized:
            central = progress.add_task("centralized", total=config.rounds, status="", start=False)

        def on_round(record: dict[str, Any]) -> None:
            status = f"acc {record['accuracy']:.3f} loss {record['loss']:.3f}"
            progress.update(rounds, advance=1, status=status)

        def on_central_round(index: int) -> None:
            progress.start_task(central)
            progress.update(central, completed=index)

        return run(config, out, on_round=on_round, on_centralized_round=on_central_round, resume=resume)


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Summary", show_header=False, title_justify="left")
    rows = [
        (
            "dataset",
            f"{summary['dataset']} ({summary['train_examples']:,} samples to train on, "
            f"{summary['heldout_examples']:,} held out)",
        ),
        ("model", f"{summary['model']} ({summary['parameters']:,} parameters)"),
        ("clients", f"{summary['clients']} ({summary['partition']})"),
        ("rounds", str(summary["rounds"])),
        ("federated accuracy", f"{summary['final_accuracy']:.4f} (best {summary['best_accuracy']:.4f})"),
    ]
    if "devices_accuracy" in summary:
        scored = f"version {summary['devices_version']} on the clients' held-out samples"
        rows.append(("on devices", f"{summary['devices_accuracy']:.4f} ({scored})"))
    if "centralized_accuracy" in summary:
        gap = summary["centralized_accuracy"] - summary["final_accuracy"]
        rows.append(("centralized accuracy", f"{summary['centralized_accuracy']:.4f} (gap {gap * 100:+.1f} points)"))
    if "secagg_neighbours" in summary:
        missing, failed = summary["secagg_missing_inputs"], summary["secagg_failed_rounds"]
        outcome = f"{missing} selected clients sent no masked input; {failed} rounds failed and were retried"
        rows.append(("secure aggregation", f"SecAgg+, k = {summary['secagg_neighbours']}, "
                     f"t = {summary['secagg_threshold']}: {outcome}"))  # fmt: skip
    if "epsilon" in summary:
        rows.append(("privacy", f"(ε = {summary['epsilon']:.3g}, δ = {summary['delta']:g}) over all rounds"))
    rows.append(("time", f"{summary['duration_s']:.1f} s"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def parse_options(items: list[str]) -> dict[str, float]:
    """KEY=VALUE pairs with numeric values, e.g. ``server_lr=0.5``."""
    options: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected a strategy option as KEY=VALUE, got {item!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"strategy option {key!r}: expected a number, got {value!r}") from None
        options[key] = int(number) if number.is_integer() and "." not in value else number
    return options
