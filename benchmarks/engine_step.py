"""One training step (forward + backward + Adam) in fedge's engine, and in PyTorch CPU if installed.

Both run in this process on the same shapes and batch, so the printed ratio compares like
with like on this machine. Run: ``python benchmarks/engine_step.py [--batch 64] [--steps 50]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from fedge.shared.models import model_spec
from fedge.shared.nn import Adam, F, Model

CASES = {"har-cnn1d": ((100, 6), 7), "digits-cnn": ((28, 28, 1), 10)}


def interleaved(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 5) -> dict[str, float]:
    """Median seconds per step for each contender, timed in alternation.

    Alternating step by step means a burst of load on a shared 2-core machine hits both
    sides alike, so the ratio stays meaningful even when absolute times wobble.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def engine_step(name: str, batch: int) -> Callable[[], None]:
    shape, classes = CASES[name]
    model = Model(model_spec(name, shape, classes), seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = rng.integers(0, classes, batch)
    optimizer = Adam(lr=1e-3)

    def step() -> None:
        model.cleargrads()
        F.softmax_cross_entropy(model(x), y).backward()
        optimizer.step(model.parameters())

    return step


def torch_step(name: str, batch: int) -> Callable[[], None] | None:
    """The same network in PyTorch (channels-first internally, as PyTorch wants)."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    classes = CASES[name][1]
    torch.manual_seed(0)
    if name == "har-cnn1d":
        net = nn.Sequential(
            nn.Conv1d(6, 16, 5), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5), nn.ReLU(), nn.MaxPool1d(2),
            nn.Flatten(), nn.Linear(32 * 22, 64), nn.ReLU(), nn.Linear(64, classes),
        )  # fmt: skip
        x = torch.randn(batch, 6, 100)
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 4 * 4, classes),
        )  # fmt: skip
        x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, classes, (batch,))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    print(f"batch {args.batch}, median of {args.steps} steps")
    print(f"{'model':<12} {'fedge ms':>9} {'torch ms':>9} {'fedge/torch':>12}")
    for name in CASES:
        steps = {"fedge": engine_step(name, args.batch)}
        theirs = torch_step(name, args.batch)
        if theirs is not None:
            steps["torch"] = theirs
        t = interleaved(steps, args.steps)
        if "torch" not in t:
            print(f"{name:<12} {t['fedge'] * 1e3:9.2f} {'-':>9} {'(no torch)':>12}")
        else:
            print(f"{name:<12} {t['fedge'] * 1e3:9.2f} {t['torch'] * 1e3:9.2f} {t['fedge'] / t['torch']:11.2f}x")


if __name__ == "__main__":
    main()
