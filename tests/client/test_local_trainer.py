"""The Python device's trainer: what it trains on, and how it scores the model it receives."""

from __future__ import annotations

import json
import logging

import numpy as np

from fedge.client.agent import LocalTrainer
from fedge.shared.data.folder import DataFolder, write_local_data
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.training import TrainConfig, evaluate, holdout_split


def _device() -> tuple[LocalTrainer, str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(size=(60, 8)) + y[:, None]).astype(np.float32)  # three separable clusters
    spec = model_spec("mlp", (8,), 3)
    return LocalTrainer(x, y), json.dumps(spec), Model(spec, seed=1).get_weights()


def test_with_a_holdout_the_device_scores_the_received_model_on_samples_it_never_trains_on():
    trainer, spec_json, start = _device()
    _, held = holdout_split(60, 0.25)
    received = Model(json.loads(spec_json))
    received.set_weights(start)
    before = evaluate(received, trainer.x[held], trainer.y[held])

    plan = TrainConfig(epochs=3, batch_size=8, lr=0.1, holdout=0.25)
    delta, examples, metrics = trainer(spec_json, start, plan, np.random.default_rng(2))
    assert examples == 45  # the update weighs what trained
    assert metrics["eval_loss"] == before.loss and metrics["eval_accuracy"] == before.accuracy
    received.set_weights([s + d for s, d in zip(start, delta, strict=True)])
    assert evaluate(received, trainer.x[held], trainer.y[held]).loss < before.loss


def test_without_a_holdout_every_sample_trains_and_no_eval_metric_is_sent():
    trainer, spec_json, start = _device()
    _, examples, metrics = trainer(spec_json, start, TrainConfig(batch_size=8), np.random.default_rng(2))
    assert examples == 60
    assert set(metrics) == {"train_loss", "train_accuracy"}


def test_a_trainer_on_a_folder_trains_on_the_sessions_added_since_the_last_round(tmp_path, caplog):
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = (rng.normal(size=(30, 4, 2)) + y[:, None, None]).astype(np.float32)
    write_local_data(tmp_path, x[:20], y[:20], ["a", "b", "c"], dataset="demo", normalisation={})
    trainer = LocalTrainer.on(DataFolder.open(tmp_path))
    spec = json.dumps(model_spec("mlp", (4, 2), 3))
    start, plan = Model(json.loads(spec), seed=1).get_weights(), TrainConfig(batch_size=8)
    assert trainer(spec, start, plan, np.random.default_rng(1))[1] == 20

    np.savez(tmp_path / "session-0001.npz", x=x[20:], y=y[20:])
    assert trainer(spec, start, plan, np.random.default_rng(1))[1] == 30

    (tmp_path / "session-0002.npz").write_bytes(b"PK\x03\x04 half written")
    with caplog.at_level(logging.WARNING, logger="fedge.agent"):
        assert trainer(spec, start, plan, np.random.default_rng(1))[1] == 30  # what it had, not a crash
    assert "session-0002.npz" in caplog.text and "training on the 30 samples read before" in caplog.text


def test_a_source_the_system_cannot_read_for_now_keeps_the_samples_read_before(tmp_path, caplog):
    class Unmounted:
        """A data folder on a disk that went away: reading it fails with an OSError, not a format error."""

        def __init__(self, folder: DataFolder) -> None:
            self.data = folder.data

        def refresh(self):
            raise PermissionError(13, "Permission denied", str(tmp_path / "part-0000.npz"))

    device, spec, start = _device()
    x = device.x.reshape(60, 4, 2)  # a data folder holds windows: (W, C) per sample
    write_local_data(tmp_path, x, device.y, ["a", "b", "c"], dataset="d", normalisation={})
    trainer = LocalTrainer.on(Unmounted(DataFolder.open(tmp_path)))
    spec = json.dumps(model_spec("mlp", (4, 2), 3))
    start = Model(json.loads(spec), seed=1).get_weights()
    with caplog.at_level(logging.WARNING, logger="fedge.agent"):
        assert trainer(spec, start, TrainConfig(batch_size=8), np.random.default_rng(1))[1] == 60
    assert "Permission denied" in caplog.text
