"""Local training and evaluation: the loop a device runs, and the one the coordinator evaluates with.

Both sides share it so a federated client, the centralized baseline and the held-out
evaluation cannot drift apart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from fedge.shared.nn import OPTIMIZERS, SGD, Adam, F, Model, Optimizer, no_grad, proximal_term, test_mode

MAX_HOLDOUT = 0.5
# What one update may carry: this many metrics, each named in this many characters (the coordinator refuses more)
MAX_METRICS, MAX_METRIC_NAME = 16, 64
HOLDOUT_SEED = 0x4D0E  # one fixed shuffle: a device holds out the same samples every round


@dataclass(frozen=True)
class TrainConfig:
    """What a client is asked to do with its data in one round."""

    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    proximal_mu: float = 0.0
    logit_adjustment: bool = False  # train against the device's own label frequencies (label skew)
    steps: int = 0  # > 0: this many optimiser steps per round, whatever the data's size, instead of epochs
    holdout: float = 0.0  # the fraction of its samples a device keeps aside to evaluate each model it receives

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"expected epochs >= 1 and batch_size >= 1, got {self.epochs} and {self.batch_size}")
        if self.steps < 0:
            raise ValueError(f"expected steps >= 0 (0: train for epochs), got {self.steps}")
        if not 0 <= self.holdout <= MAX_HOLDOUT:
            raise ValueError(f"expected 0 <= holdout <= {MAX_HOLDOUT}, got {self.holdout}")
        if not self.lr > 0:
            raise ValueError(f"expected lr > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"expected optimizer in {sorted(OPTIMIZERS)}, got {self.optimizer!r}")

    def local_steps(self, n: int) -> int:
        """The optimiser steps a device with ``n`` training samples takes in a round (what ``batches`` yields)."""
        return self.steps if self.steps else self.epochs * -(-n // self.batch_size)

    def override(self, options: dict[str, Any]) -> TrainConfig:
        """A copy with a strategy's or task's options applied; unknown keys are refused."""
        known = {f.name: f.type for f in fields(self)}
        unknown = set(options) - set(known)
        if unknown:
            raise ValueError(f"unknown training option(s) {sorted(unknown)}, expected some of {sorted(known)}")
        merged = asdict(self)
        for key, value in options.items():
            merged[key] = _flag(key, value) if isinstance(merged[key], bool) else type(merged[key])(value)
        return TrainConfig(**merged)


def _flag(key: str, value: Any) -> bool:
    """A boolean option from a bool or its spelling (-S key=true); bool("false") would be True."""
    spelled = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if isinstance(value, bool):
        return value
    if str(value).lower() in spelled:
        return spelled[str(value).lower()]
    raise ValueError(f"expected true or false for {key}, got {value!r}")


def cosine_lr(lr: float, progress: float) -> float:
    """The learning rate after ``progress`` (0..1) of the training budget: cosine decay to 5% of ``lr``.

    The last rounds settle instead of bouncing, so the final accuracy is a fair reading
    rather than a lucky one. Simulations and the coordinator's tasks share this one formula.
    """
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    num_examples: int


def make_optimizer(model: Model, config: TrainConfig) -> Optimizer:
    anchor = [p.data.copy() for p in model.trainable]  # FedProx pulls what trains towards its start
    hooks = [proximal_term(config.proximal_mu, anchor)] if config.proximal_mu else []
    if config.optimizer == "adam":
        return Adam(lr=config.lr, hooks=hooks)
    return SGD(lr=config.lr, momentum=config.momentum, hooks=hooks)


def label_log_prior(y: np.ndarray, classes: int) -> np.ndarray:
    """log p(y) of the labels a device holds, Laplace-smoothed: (count + 1) / (n + classes).

    Added to the logits while training (logit adjustment, the "balanced softmax"; FedLC, Zhang
    et al. 2022), it lets the softmax explain the device's label skew, so local steps stop
    pulling the shared classifier towards the device's own classes; the model is evaluated and
    served on its raw logits. A class the device lacks sits ~log(n) below, and is barely pushed.
    """
    counts = np.bincount(y.astype(np.int64, copy=False), minlength=classes)[:classes]
    return np.log((counts + 1.0) / (len(y) + classes)).astype(np.float32)


def batches(n: int, config: TrainConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The sample indices of each step: ``epochs`` shuffled passes, or exactly ``steps`` batches.

    With ``steps`` every device does the same work per round whatever its data's size (the
    K local steps of the FedAvg literature), and a round can be a fraction of an epoch: a
    pass is cut where the steps run out, and a small dataset is reshuffled and passed again.
    """
    taken = 0
    for _ in itertools.count() if config.steps else range(config.epochs):
        order = rng.permutation(n)
        for start in range(0, n, config.batch_size):
            if config.steps and taken == config.steps:
                return
            taken += 1
            yield order[start : start + config.batch_size]


def fit(model: Model, x: np.ndarray, y: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> Evaluation:
    """Train in place for ``config.epochs`` or ``config.steps``; returns the mean training loss and accuracy seen."""
    if len(x) == 0:
        raise ValueError("cannot train on an empty dataset")
    optimizer = make_optimizer(model, config)
    total_loss = correct = seen = 0.0
    prior: np.ndarray | None = None
    for batch in batches(len(x), config, rng):
        model.cleargrads()
        logits = model(x[batch])
        if config.logit_adjustment:
            prior = label_log_prior(y, logits.shape[1]) if prior is None else prior
            logits = logits + prior
        loss = F.softmax_cross_entropy(logits, y[batch])
        loss.backward()
        optimizer.step(model.trainable)
        total_loss += float(loss.data) * len(batch)
        correct += F.accuracy(logits, y[batch]) * len(batch)
        seen += len(batch)
    return Evaluation(total_loss / seen, correct / seen, len(x))


def holdout_split(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The sample indices a device trains on, and those it keeps aside to evaluate received models.

    Federated evaluation without central data: each round a device first scores the model it
    was sent on samples it never trains on (the ``eval_*`` metrics). The split is one fixed
    shuffle of the device's ``n`` samples, so it holds from round to round and across
    restarts; at least one sample stays on each side once ``fraction`` > 0 and ``n`` >= 2.
    """
    if fraction <= 0 or n < 2:
        return np.arange(n), np.arange(0)
    order = np.random.default_rng(HOLDOUT_SEED).permutation(n)
    kept = min(n - 1, max(1, round(n * fraction)))
    return np.sort(order[kept:]), np.sort(order[:kept])


def evaluate(model: Model, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> Evaluation:
    if len(x) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    total_loss = correct = 0.0
    with no_grad(), test_mode():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            logits = model(xb)
            total_loss += float(F.softmax_cross_entropy(logits, yb).data) * len(xb)
            correct += F.accuracy(logits, yb) * len(xb)
    return Evaluation(total_loss / len(x), correct / len(x), len(x))
