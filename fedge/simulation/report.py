"""What a run leaves behind in ``--out``: metrics.jsonl, summary.json and a plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO


class MetricsLog:
    """One JSON object per committed round, flushed at once so a crash loses nothing.

    A resumed run starts from the records its stopped run wrote (``previous``)."""

    def __init__(self, out: Path, previous: Sequence[dict[str, Any]] = ()) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "metrics.jsonl"
        self._file: TextIO = self.path.open("w", encoding="utf-8")
        for record in previous:
            self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records in ``path``; a last line without its newline (a stop cut the write short) is left out."""
    *complete, _partial = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in complete if line.strip()]


def write_config(out: Path, config: dict[str, Any]) -> Path:
    """The run's settings, written when it starts, so that ``--resume`` can check it continues the same run."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def read_config(out: Path) -> dict[str, Any]:
    path = out / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"nothing to resume in {out}: no config.json (fedge simulate writes it as it starts)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not the JSON fedge simulate wrote ({error}): nothing to resume") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not the JSON fedge simulate wrote: expected an object of settings")
    return config


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return path


def plot(
    out: Path,
    records: list[dict[str, Any]],
    centralized_accuracy: float | None = None,
    devices_last: tuple[int, float] | None = None,
) -> Path:
    """Held-out accuracy and loss per round; the centralized bound as a dashed line.

    ``devices_last``: the devices' score of the last version (version, accuracy), from the scoring round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in records]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    acc_ax.plot(rounds, [r["accuracy"] for r in records], marker="o", label="federated")
    scored = [(r["round"] - 1, r["eval_accuracy"]) for r in records if "eval_accuracy" in r]
    if devices_last is not None and scored and devices_last[0] > scored[-1][0]:
        scored.append(devices_last)
    if scored:  # round N's devices scored the model they received: version N − 1
        acc_ax.plot(*zip(*scored, strict=True), marker=".", label="on the clients' held-out samples")
    if centralized_accuracy is not None:
        acc_ax.axhline(centralized_accuracy, linestyle="--", color="grey", label="centralized")
    acc_ax.set(title="Held-out accuracy", xlabel="round", ylabel="accuracy", ylim=(0, 1))
    acc_ax.legend(loc="lower right")
    loss_ax.plot(rounds, [r["loss"] for r in records], marker="o", label="held-out")
    loss_ax.plot(rounds, [r["train_loss"] for r in records], marker=".", label="clients' training")
    loss_ax.set(title="Loss", xlabel="round", ylabel="cross-entropy")
    loss_ax.legend(loc="upper right")
    path = out / "plot.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
