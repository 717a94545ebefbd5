"""Federated fine-tuning: a task that starts from a published model and trains only some layers.

    init_from     a published model's folder (<data_dir>/registry/<task>/<version>, or what
                  `fedge models pull` wrote): its signature is checked, then its weights are the
                  task's version 0. Parameters of the named layers whose shapes differ (a new
                  head for other classes) start fresh from the task's seed.
    train_layers  the layers clients train and report (assignment.trainable); the others stay as
                  they came, so an update, its upload and the aggregation cover only these.

A model is trusted when this coordinator's key or the key of the data dir that holds it signed
it: fine-tuning starts from a model the operator published, never from an unchecked file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedge.server.config import TaskConfig
from fedge.shared import registry
from fedge.shared.nn import Model, Weights


def trained_indices(names: list[str], layers: tuple[str, ...]) -> list[int]:
    """Positions of the parameters clients train: every one without ``layers``."""
    return [i for i, name in enumerate(names) if not layers or name.split("/")[0] in layers]


def initial_weights(task: TaskConfig, model: Model, own_key: registry.SigningKey) -> Weights:
    """The task's version 0: ``model``'s seeded weights, or those of the published ``init_from``."""
    fresh = model.get_weights()
    if not task.init_from:
        return fresh
    from fedge.shared.onnx.weights import read_weights

    folder = Path(task.init_from)
    _, model_bytes = _read_trusted(folder, own_key)
    spec, published = read_weights(model_bytes)
    by_name = dict(zip(Model(spec).parameter_names, published, strict=True))
    start = []
    for name, weight in zip(model.parameter_names, fresh, strict=True):
        loaded = by_name.get(name)
        if loaded is not None and loaded.shape == weight.shape:
            start.append(loaded)
        elif name.split("/")[0] in task.train_layers:
            start.append(weight)  # a layer being retrained may change shape: a new head
        else:
            got = "no such parameter" if loaded is None else f"shape {loaded.shape}"
            raise ValueError(
                f"task {task.name!r}: init_from {folder}: expected {name} of shape {weight.shape}, got {got}; "
                "only layers named in train_layers may differ"
            )
    return start


def _read_trusted(folder: Path, own_key: registry.SigningKey) -> tuple[Any, bytes]:
    keys = [own_key.public_key()]
    holder = next((p.parent for p in folder.resolve().parents if p.name == "registry"), None)
    if holder is not None and registry.key_path(holder).is_file():
        keys.append(registry.load(registry.key_path(holder)).public_key())
    error: Exception | None = None
    for key in keys:
        try:
            return registry.read_published(folder, key)
        except registry.VerificationError as refused:
            error = refused
        except FileNotFoundError as missing:
            raise ValueError(f"init_from: {missing}") from None
    raise ValueError(f"init_from: {error}; a task starts only from a model its coordinator can verify")
