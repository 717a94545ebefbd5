"""A Flower NumPyClient as a user writes one (here without flwr: only its two methods matter):
softmax regression on three 2-D clusters, in numpy. Each client's data comes from FLOWER_CLIENT."""

from __future__ import annotations

import os

import numpy as np


def data(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], np.float32)
    return (centres[y] + rng.normal(scale=0.6, size=(n, 2))).astype(np.float32), y


def initial_weights() -> list[np.ndarray]:
    return [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]


class SoftmaxClient:
    def __init__(self, seed: int = 0) -> None:
        self.x, self.y = data(seed)
        self.configs: list[dict] = []

    def get_parameters(self, config):
        return initial_weights()

    def _loss(self, w, b):
        logits = self.x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return float(-np.log(p[np.arange(len(self.y)), self.y] + 1e-9).mean()), p

    def fit(self, parameters, config):
        self.configs.append(dict(config))
        w, b = (p.copy() for p in parameters)
        for _ in range(config["local_epochs"] * 5):
            _, p = self._loss(w, b)
            p[np.arange(len(self.y)), self.y] -= 1
            w -= config["lr"] * self.x.T @ p / len(self.y)
            b -= config["lr"] * p.mean(axis=0)
        loss, _ = self._loss(w, b)
        return [w.astype(np.float32), b.astype(np.float32)], len(self.y), {"train_loss": loss, "note": "text"}

    def evaluate(self, parameters, config):
        loss, p = self._loss(*parameters)
        return loss, len(self.y), {"accuracy": float((p.argmax(axis=1) == self.y).mean())}


def make_client() -> SoftmaxClient:
    """What `fedge client --flower flower_client.py:make_client` calls: the client for this device."""
    return SoftmaxClient(int(os.environ.get("FLOWER_CLIENT", "0")))


instance = SoftmaxClient(7)
