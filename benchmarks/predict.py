"""`fedge models predict` on one sample, end to end: a new process each time, as a user runs it.

A one-round squeezenet-mini simulation on Fashion-MNIST publishes the model (fp32 and int8);
then each command runs a few times and the median is printed beside two baselines measured in
the same run: the bare interpreter, and `fedge --help` (the CLI's own start-up).

    python benchmarks/predict.py          # ~1 min on 2 cores
    python benchmarks/predict.py --repeats 9

Target (issue 5): well under a second end to end on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fedge.shared import data
from fedge.simulation import SimulationConfig, run


def seconds(command: list[str], repeats: int) -> float:
    """The median wall time of ``command``, each run checked to succeed."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        config = SimulationConfig(
            dataset="fashion-mnist", model="squeezenet-mini", rounds=1, clients=2, dataset_options={"limit": 500}
        )
        run(config, out)
        sample = Path(tmp) / "one.npy"
        np.save(sample, data.load("fashion-mnist", limit=500).heldout.x[:1])
        fedge = [sys.executable, "-m", "fedge"]
        predict = [*fedge, "models", "predict", "simulation", str(sample), "--data-dir", str(out)]
        interpreter = seconds([sys.executable, "-c", "pass"], args.repeats)
        cli = seconds([*fedge, "--help"], args.repeats)
        rows = [
            ("python -c pass", interpreter),
            ("fedge --help", cli),
            ("fedge models predict, fp32", seconds(predict, args.repeats)),
            ("fedge models predict --int8", seconds([*predict, "--int8"], args.repeats)),
        ]
    print(f"squeezenet-mini, one Fashion-MNIST sample, median of {args.repeats} processes")
    for label, value in rows:
        print(f"  {label:30} {value:6.3f} s  {value / cli:5.1f}x fedge --help")
    print("  target: well under 1 s end to end")


if __name__ == "__main__":
    main()
