"""A task evaluated on a data folder (`evaluate_on = "clients/heldout"`): the operator's own
held-out samples, or the heldout/ that `fedge data split` writes, instead of a built-in dataset."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fedge.client.agent import Agent
from fedge.client.transport import InProcessTransport
from fedge.server.coordinator import Coordinator
from fedge.shared import registry, training
from fedge.shared.data.folder import write_local_data
from fedge.shared.nn import Model
from fedge.shared.proto import admin_pb2 as apb
from fedge.simulation.inprocess import SimulatedClock, play_round

from .conftest import small_task

NORMALISATION = {"method": "standardise", "channels": ["ax", "ay"], "mean": [0.5, -0.5], "std": [2.0, 4.0]}


def heldout_folder(tmp_path, labels=("a", "b", "c"), shape=(8, 2)):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, *shape)).astype(np.float32), rng.integers(0, len(labels), 40)
    folder = tmp_path / "split" / "heldout"
    normalisation = NORMALISATION if shape[-1] == 2 else {}
    write_local_data(folder, x, y, labels, dataset="my-sensors", normalisation=normalisation)
    return folder, x, y


def halving(spec_json, start, plan, rng, trainable=()):
    """An update that moves every weight, so that each version scores differently."""
    return [-w / 2 for w in start], 10, {}


def test_each_version_is_scored_on_the_folders_samples_and_the_best_is_published(tmp_path):
    folder, x, y = heldout_folder(tmp_path)
    task = small_task(evaluate_on=str(folder), publish="best", publish_int8=False, rounds=2)
    clock = SimulatedClock()
    coordinator = Coordinator([task], tmp_path / "data", clock=clock)
    try:
        transport = InProcessTransport(coordinator)
        request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=2)
        agents = [Agent(transport, Agent.enroll(transport, t), halving, seed=i)
                  for i, t in enumerate(coordinator.create_tokens(request).tokens)]  # fmt: skip
        rounds = coordinator.tasks["t"]
        play_round(coordinator, agents, np.random.default_rng(0), clock, task_id="t")
        model = Model(task.model_spec())
        model.set_weights(rounds.weights)
        expected = training.evaluate(model, x, y)
        assert rounds.last_metrics["accuracy"] == pytest.approx(expected.accuracy)
        assert rounds.last_metrics["loss"] == pytest.approx(expected.loss)
        coordinator.publishing.submit(lambda: None).result()  # the publisher has caught up
        root = tmp_path / "data" / "registry"
        published = registry.published_versions(root, "t")
        assert published and set(published) <= {1, 2}
        manifest, _ = registry.read_published(root / "t" / str(published[-1]), coordinator.signing_key.public_key())
        assert manifest.input["normalisation"] == NORMALISATION  # what the folder says of its samples
    finally:
        coordinator.close()


@pytest.mark.parametrize(
    ("folder_of", "expected"),
    [
        ({"labels": ("a", "b", "x")}, r"expected the task's labels \['a', 'b', 'c'\], got \['a', 'b', 'x'\]"),
        ({"shape": (8, 3)}, r"expected samples of the task's input_shape \[8, 2\], got \[8, 3\]"),
    ],
)
def test_a_folder_of_other_samples_stops_the_start_naming_it(tmp_path, folder_of, expected):
    folder, _, _ = heldout_folder(tmp_path, **folder_of)
    with pytest.raises(ValueError, match=rf"task 't': evaluate_on {folder}: {expected}"):
        Coordinator([replace(small_task(), evaluate_on=str(folder))], tmp_path / "data")
