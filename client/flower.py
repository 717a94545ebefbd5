"""A Flower ``NumPyClient``, run unchanged by the fedge agent: ``fedge client --flower MODULE:ATTR``.

ATTR is the client object, its class, or a function of no arguments that returns one (for a
Flower ``client_fn(context)``, wrap it: ``lambda: client_fn(None)``). The agent calls its two
methods as Flower's runtime would:

    fit(parameters, config)       -> (parameters, num_examples, metrics)   in a training round
    evaluate(parameters, config)  -> (loss, num_examples, metrics)         in a scoring round

``parameters`` is the global model as a list of float32 arrays, in the order of the task's
``initial_weights``, and ``config`` the round's plan: ``round`` (the rounds this device has
trained, this one included), ``epochs`` (also as
``local_epochs``), ``batch_size``, ``lr``, ``proximal_mu`` and ``holdout``. What fit returns is
checked (same shapes, finite) and becomes the update; its numeric metrics travel with it. The
coordinator's task is ``model = "external"`` (docs/flower.md): this trainer refuses any other,
and fedge's own trainers refuse it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fedge.client.agent import AgentStopped
from fedge.client.reader import load_attribute
from fedge.shared.models import is_external
from fedge.shared.nn import Weights
from fedge.shared.training import MAX_METRIC_NAME, MAX_METRICS, TrainConfig


class FlowerError(ValueError):
    """The Flower client cannot be loaded or made. In a round, a fit or evaluate that fails or
    returns what the round cannot use stops the agent (AgentStopped) with the reason: a bug in the
    client's code would fail every round alike."""


class FlowerTrainer:
    """The agent's trainer, delegating to a Flower ``NumPyClient``."""

    def __init__(self, client: Any, name: str = "the Flower client") -> None:
        for method in ("fit", "evaluate"):
            if not callable(getattr(client, method, None)):
                raise FlowerError(f"{name}: expected a Flower NumPyClient with fit and evaluate, got {client!r}")
        self.client, self.name, self.round = client, name, 0

    @classmethod
    def load(cls, spec: str) -> FlowerTrainer:
        """MODULE:ATTR, the client or what makes one (a class, a function of no arguments)."""
        try:
            found = load_attribute(spec)
        except ValueError as error:
            raise FlowerError(f"--flower {error}") from None
        try:
            client = _make(found)
        except Exception as error:  # the device's code: any failure to make the client is reported the same way
            raise FlowerError(f"--flower {spec!r}: cannot make the client: {type(error).__name__}: {error}") from error
        return cls(client, f"--flower {spec!r}")

    def refuses(self, spec_json: str) -> str | None:
        """Why this device sits out a task: a model of fedge's zoo is not the Flower client's."""
        if is_external(json.loads(spec_json)):
            return None
        return "this device runs a Flower client: it trains only tasks with model = 'external'"

    def __call__(
        self, spec_json: str, start: Weights, plan: TrainConfig, rng: np.random.Generator, trainable: Any = ()
    ) -> tuple[Weights, int, dict[str, float]]:
        self.round += 1
        returned = self._call("fit", [w.copy() for w in start], self._config(plan))
        if not isinstance(returned, tuple | list) or len(returned) != 3:
            raise AgentStopped(f"{self.name}: expected fit to return (parameters, num_examples, metrics)")
        parameters, examples, metrics = returned
        trained = self._check(parameters, start)
        return [t - s for t, s in zip(trained, start, strict=True)], self._examples(examples, "fit"), _numbers(metrics)

    def score(self, spec_json: str, weights: Weights, holdout: float) -> tuple[int, dict[str, float]] | None:
        """The client's evaluate: eval_loss, and eval_accuracy when its metrics have accuracy."""
        config = {"round": self.round, "holdout": holdout}
        returned = self._call("evaluate", [w.copy() for w in weights], config)
        if not isinstance(returned, tuple | list) or len(returned) != 3:
            raise AgentStopped(f"{self.name}: expected evaluate to return (loss, num_examples, metrics)")
        loss, examples, metrics = returned
        if not _is_number(loss):
            raise AgentStopped(f"{self.name}: expected evaluate's loss as a number, got {loss!r}")
        scores = {"eval_loss": float(loss)}
        if isinstance(metrics, Mapping) and _is_number(metrics.get("accuracy")):
            scores["eval_accuracy"] = float(metrics["accuracy"])
        return self._examples(examples, "evaluate"), scores

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.client, method)(*args)
        except Exception as error:  # the client's own code
            raise AgentStopped(f"{self.name}: {method} failed: {type(error).__name__}: {error}") from error

    def _config(self, plan: TrainConfig) -> dict[str, Any]:
        return {
            "round": self.round, "epochs": plan.epochs, "local_epochs": plan.epochs, "batch_size": plan.batch_size,
            "lr": plan.lr, "proximal_mu": plan.proximal_mu, "holdout": plan.holdout,
        }  # fmt: skip

    def _check(self, parameters: Any, start: Weights) -> Weights:
        arrays = [np.asarray(p) for p in parameters] if isinstance(parameters, list | tuple) else None
        if arrays is None or len(arrays) != len(start):
            got = len(arrays) if arrays is not None else type(parameters).__name__
            raise AgentStopped(f"{self.name}: expected fit to return {len(start)} arrays, got {got}")
        for i, (array, first) in enumerate(zip(arrays, start, strict=True)):
            if array.shape != first.shape or array.dtype.kind not in "fiu":  # ints: a BatchNorm's batch count
                got = f"{array.dtype} {array.shape}"
                raise AgentStopped(f"{self.name}: expected parameter {i} as numbers of shape {first.shape}, got {got}")
            if not np.isfinite(array).all():
                raise AgentStopped(f"{self.name}: parameter {i} holds NaN or infinity after fit")
        return [a.astype(np.float32) for a in arrays]

    def _examples(self, examples: Any, method: str) -> int:
        if isinstance(examples, bool) or not isinstance(examples, int | np.integer) or examples < 1:
            raise AgentStopped(f"{self.name}: expected {method}'s num_examples as an int >= 1, got {examples!r}")
        return int(examples)


def _make(found: Any) -> Any:
    """A class or a factory is called; a client object (its fit a bound method) is used as it is."""
    if isinstance(found, type) or (callable(found) and not hasattr(found, "fit")):
        return found()
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _numbers(metrics: Any) -> dict[str, float]:
    """The metrics that can travel: numbers, finite, named in at most MAX_METRIC_NAME characters; at most
    MAX_METRICS."""
    if not isinstance(metrics, Mapping):
        return {}
    kept = {
        str(k): float(v)
        for k, v in metrics.items()
        if _is_number(v) and math.isfinite(v) and len(str(k)) <= MAX_METRIC_NAME
    }
    return dict(list(kept.items())[:MAX_METRICS])
