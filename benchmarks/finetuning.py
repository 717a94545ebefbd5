"""Federated fine-tuning on new users: what starting from a published model buys, and what it saves.

The smartwatch recordings (`watch`, 10 subjects) are split by subject. A har-cnn1d model is
trained federatedly on the first subjects and published. The other subjects then fine-tune it
federatedly, training only the layers named (`--train-layers`), and are compared on their own
held-out windows with: the published model as it is, the same fine-tuning budget training every
layer, and that budget from scratch. It prints accuracy, seconds and the bytes each client uploads
per round.

    .venv/bin/python benchmarks/finetuning.py                    # about two minutes on 2 cores
    .venv/bin/python benchmarks/finetuning.py --pretrain-rounds 30 --rounds 5 --train-layers conv2,dense,logits
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fedge.shared import data, registry
from fedge.shared.onnx import runtime
from fedge.simulation.config import SimulationConfig
from fedge.simulation.inprocess import TASK, Federation, run_rounds


def by_subjects(splits: data.Splits, subjects: np.ndarray) -> data.Splits:
    """The train and held-out windows of these subjects only."""

    def keep(dataset: data.Dataset) -> data.Dataset:
        assert dataset.groups is not None
        return dataset.subset(np.flatnonzero(np.isin(dataset.groups, subjects)))

    return data.Splits(keep(splits.train), keep(splits.heldout), splits.normalisation)


def federation(splits: data.Splits, config: SimulationConfig) -> Federation:
    """A Federation over ``splits`` with one client per subject, as `fedge simulate` makes one."""
    template = Federation.from_config(config)
    parts = data.partition(splits.train, "natural", None, config.seed)
    task = replace(template.task, clients_per_round=len(parts), min_clients=len(parts))
    return Federation(splits, [splits.train.subset(p) for p in parts], task)


def train(splits: data.Splits, config: SimulationConfig, out: Path) -> tuple[float, float]:
    """Run the rounds; the last version's held-out accuracy on ``splits`` and the seconds taken."""
    start = time.perf_counter()
    records = list(run_rounds(config, federation(splits, config), out))
    return records[-1]["accuracy"], time.perf_counter() - start


def published_accuracy(folder: Path, splits: data.Splits) -> float:
    key = registry.load(registry.key_path(folder.parents[2])).public_key()
    _, model = registry.read_published(folder, key)
    return runtime.evaluate(runtime.session(model), splits.heldout.x, splits.heldout.y)["accuracy"]


def upload_bytes(out: Path) -> int:
    """Bytes of one client's update in the last round (tensor specs in the stored config)."""
    from fedge.server.store import Store

    store = Store(out)
    try:
        config = json.loads(store.query("SELECT config_json FROM tasks WHERE task_id = ?", (TASK,))[0]["config_json"])
    finally:
        store.close()
    from fedge.shared.models import model_spec
    from fedge.shared.nn import Model

    model = Model(model_spec(config["model"], tuple(config["input_shape"]), len(config["labels"])))
    layers = config["train_layers"]
    return sum(p.size * 4 for n, p in zip(model.parameter_names, model.parameters(), strict=True)
               if not layers or n.split("/")[0] in layers)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain-subjects", type=int, default=5, help="the first N subjects pretrain")
    parser.add_argument("--pretrain-rounds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="fine-tuning rounds on the other subjects")
    parser.add_argument(
        "--train-layers",
        action="append",
        help="layers the new subjects train, comma-separated; repeat to compare (default: logits, then dense,logits)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    splits = data.load("watch")
    subjects = np.unique(splits.train.groups)
    old, new = (
        by_subjects(splits, subjects[: args.pretrain_subjects]),
        by_subjects(splits, subjects[args.pretrain_subjects :]),
    )
    base = SimulationConfig(dataset="watch", seed=args.seed, publish="every", publish_int8=False)
    variants = args.train_layers or ["logits", "dense,logits"]
    with tempfile.TemporaryDirectory(prefix="fedge-finetuning-") as tmp:
        work = Path(tmp)
        pre = replace(base, rounds=args.pretrain_rounds)
        pre_accuracy, pre_s = train(old, pre, work / "pre")
        folder = work / "pre" / "registry" / TASK / str(args.pretrain_rounds)
        rows = [("pretrained on the first subjects, as published", published_accuracy(folder, new), 0.0, None)]
        tuned = replace(base, rounds=args.rounds, init_from=str(folder))
        runs = [(f"fine-tuned: {v} only", replace(tuned, train_layers=tuple(v.split(",")))) for v in variants]
        runs += [("fine-tuned: every layer", tuned), ("from scratch, same rounds", replace(base, rounds=args.rounds))]
        for name, config in runs:
            out = work / f"run-{len(rows)}"
            accuracy, seconds = train(new, config, out)
            rows.append((name, accuracy, seconds, upload_bytes(out)))
    print(f"watch, har-cnn1d: pretrained on {args.pretrain_subjects} subjects for {args.pretrain_rounds} rounds "
          f"(held-out accuracy on them {pre_accuracy:.3f}, {pre_s:.0f} s); "
          f"{len(subjects) - args.pretrain_subjects} new subjects, {args.rounds} rounds", file=sys.stderr)  # fmt: skip
    full = rows[-1][3]
    print(f"{'on the new subjects':<44} {'accuracy':>8} {'seconds':>8} {'upload/client/round':>20}")
    for name, accuracy, seconds, sent in rows:
        upload = "-" if sent is None else f"{sent / 1024:.1f} KiB ({sent / full:.0%})"
        print(f"{name:<44} {accuracy:>8.3f} {seconds:>8.1f} {upload:>20}")


if __name__ == "__main__":
    main()
