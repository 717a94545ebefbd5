"""Write the engine's fixtures for the JavaScript trainer: tests/vectors/engine/<model>.json.

    .venv/bin/python scripts/gen_engine_vectors.py           rewrite the files
    .venv/bin/python scripts/gen_engine_vectors.py --check   exit 1 if a file is stale (tests do the same)

For every zoo model the browser trains, with a small input so the files stay small, a file holds:
the spec, the parameter names and shapes in spec order, the seeded initial weights, one batch
with its labels, the engine's logits and loss on it, and the weights after a few optimiser steps
on that batch (plain SGD, SGD with momentum and FedProx's proximal term, Adam, SGD with logit
adjustment against the batch's label prior). Tensors are
base64 strings of little-endian float32 in C order. The steps run in test mode (dropout off):
the two engines cannot draw the same dropout masks. client/js/test/model/ replays the files
with TF.js; tests/vectors/test_engine_vectors.py fails when they are stale.

Stale means a structural change, or a number more than TOLERANCE from what the engine computes
now: numpy's OpenBLAS picks its kernels by CPU, and an AVX-512 machine's Adam steps (which
divide by √v) left one har-cnn1d weight 3.4e-6 from an AVX2 machine's, so the files cannot be
compared as text. The JS replay allows 5e-5.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fedge.shared.models import model_spec
from fedge.shared.nn import F, Model, test_mode
from fedge.shared.training import TrainConfig, label_log_prior, make_optimizer

TOLERANCE = 1e-5
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tests" / "vectors" / "engine"
BATCH = 6

# name -> (input shape, classes, cases): small inputs, but every layer keeps a spatial extent above 1;
# squeezenet-mini's 61k parameters only take the plain step (the optimisers are tested on the others)
MODELS: dict[str, tuple[tuple[int, ...], int, tuple[str, ...]]] = {
    "mlp": ((8, 3), 4, ("sgd", "momentum-prox", "adam", "adjusted")),
    "har-cnn1d": ((32, 6), 5, ("sgd", "momentum-prox", "adam", "adjusted")),
    "digits-cnn": ((20, 20, 1), 4, ("sgd", "momentum-prox", "adam", "adjusted")),
    "squeezenet-mini": ((12, 12, 3), 5, ("sgd",)),
}

# name -> (training options, steps); the first step of momentum is plain SGD, so it takes two
CASES: dict[str, tuple[dict[str, Any], int]] = {
    "sgd": ({"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "proximal_mu": 0.0}, 1),
    "momentum-prox": ({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "proximal_mu": 0.5}, 2),
    "adam": ({"optimizer": "adam", "lr": 0.01, "momentum": 0.0, "proximal_mu": 0.0}, 2),
    "adjusted": ({"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "proximal_mu": 0.0, "logit_adjustment": True}, 1),
}


def encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def decode(text: str, shape: list[int]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


def train_steps(model: Model, x: np.ndarray, y: np.ndarray, options: dict[str, Any], steps: int) -> list[float]:
    """``steps`` optimiser steps on one batch, as ``training.fit`` takes them; returns each loss."""
    config = TrainConfig(epochs=1, batch_size=len(x), **options)
    optimizer = make_optimizer(model, config)
    losses = []
    with test_mode():
        for _ in range(steps):
            model.cleargrads()
            logits = model(x)
            if config.logit_adjustment:  # the batch is the device's data: its labels are the prior
                logits = logits + label_log_prior(y, logits.shape[1])
            loss = F.softmax_cross_entropy(logits, y)
            loss.backward()
            optimizer.step(model.parameters())
            losses.append(float(loss.data))
    return losses


def build(name: str) -> dict[str, Any]:
    input_shape, classes, case_names = MODELS[name]
    spec = model_spec(name, input_shape, classes)
    rng = np.random.default_rng(sum(name.encode()))
    x = rng.normal(0.0, 1.0, (BATCH, *input_shape)).astype(np.float32)
    y = rng.integers(0, classes, BATCH)
    model = Model(spec, seed=1)
    weights = model.get_weights()
    with test_mode():
        logits = model(x).data
        loss = float(F.softmax_cross_entropy(logits, y).data)
    cases = []
    for case in case_names:
        options, steps = CASES[case]
        model.set_weights(weights)
        losses = train_steps(model, x, y, options, steps)
        cases.append(
            {
                "name": case,
                **options,
                "steps": steps,
                "losses": losses,
                "weights": list(map(encode, model.get_weights())),
            }
        )
    return {
        "description": f"{name}: the engine's forward pass and optimiser steps on one batch",
        "spec": spec,
        "parameters": [
            {"name": n, "shape": list(w.shape)} for n, w in zip(model.parameter_names, weights, strict=True)
        ],
        "weights": list(map(encode, weights)),
        "x": {"shape": list(x.shape), "data": encode(x)},
        "y": [int(v) for v in y],
        "logits": {"shape": list(logits.shape), "data": encode(logits)},
        "loss": loss,
        "cases": cases,
    }


def tensors(content: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every float32 tensor in a file, by where it sits."""
    shapes = [p["shape"] for p in content["parameters"]]
    found = {f"weights[{i}]": decode(w, s) for i, (w, s) in enumerate(zip(content["weights"], shapes, strict=True))}
    for key in ("x", "logits"):
        found[key] = decode(content[key]["data"], content[key]["shape"])
    for case in content["cases"]:
        for i, (w, s) in enumerate(zip(case["weights"], shapes, strict=True)):
            found[f"{case['name']}.weights[{i}]"] = decode(w, s)
    return found


def _without_numbers(content: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in content.items() if k not in ("weights", "x", "logits", "loss")}
    rest["cases"] = [{k: v for k, v in case.items() if k not in ("weights", "losses")} for case in content["cases"]]
    return rest


def _losses(content: dict[str, Any]) -> np.ndarray:
    return np.array([content["loss"], *(x for case in content["cases"] for x in case["losses"])])


def differences(committed: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """What makes a committed file stale against a fresh build: [] when it is current."""
    if _without_numbers(committed) != _without_numbers(fresh):
        return ["the spec, parameters or cases changed"]
    old, new = tensors(committed), tensors(fresh)
    if old.keys() != new.keys():
        return ["other tensors"]
    found = []
    for key, value in new.items():
        if old[key].shape != value.shape:
            found.append(f"{key}: shape")
        elif (off := np.abs(old[key] - value).max(initial=0)) > TOLERANCE:
            found.append(f"{key}: {off:.2g} off")
    if np.abs(_losses(committed) - _losses(fresh)).max() > TOLERANCE:
        found.append("losses")
    return found


def path_for(name: str) -> Path:
    return TARGET / f"{name}.json"


def dumps(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=1) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name in MODELS:
        path, fresh = path_for(name), build(name)
        if "--check" in argv:
            found = differences(json.loads(path.read_text()), fresh) if path.exists() else ["missing"]
            if found:
                stale.append(f"{path.name} ({'; '.join(found[:3])})")
        else:
            TARGET.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(fresh))
            print(path.relative_to(ROOT))
    if stale:
        print(f"stale engine vectors (run scripts/gen_engine_vectors.py): {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
