"""Federated fine-tuning: start from a published model, train and report only the named layers."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from fedge.server.config import ServerSettings
from fedge.server.coordinator import Coordinator
from fedge.server.daemon import start
from fedge.server.publishing import Publisher
from fedge.shared import registry
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.proto import admin_pb2_grpc, coordinator_pb2_grpc
from fedge.simulation import SimulationConfig, run

from .conftest import Service, small_task

HEAD = ["logits/kernel", "logits/bias"]


def publish_version_1(data_dir, **task):
    """Publish version 1 of task t (seed 7) into ``data_dir``'s registry, signed by its key."""
    config = small_task(seed=7, publish="every", publish_every=1, **task)
    spec = model_spec(config.model, config.input_shape, len(config.labels))
    weights = Model(spec, seed=7).get_weights()
    key = registry.load_or_create(registry.key_path(data_dir))
    Publisher(config, spec, data_dir / "registry", key).publish(1, weights, {"accuracy": 0.5})
    return data_dir / "registry" / "t" / "1", weights


def test_a_task_starts_from_a_published_model(tmp_path):
    folder, published = publish_version_1(tmp_path / "pretrained")
    coordinator = Coordinator([small_task(name="ft", init_from=str(folder))], tmp_path / "ft")
    try:
        start = coordinator.tasks["ft"].weights
    finally:
        coordinator.close()
    for got, expected in zip(start, published, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_new_head_for_other_classes_starts_fresh_and_the_body_is_kept(tmp_path):
    folder, published = publish_version_1(tmp_path / "pretrained")
    task = small_task(name="ft", labels=("p", "q", "r", "s"), init_from=str(folder), train_layers=("logits",))
    coordinator = Coordinator([task], tmp_path / "ft")
    try:
        start = coordinator.tasks["ft"].weights
    finally:
        coordinator.close()
    np.testing.assert_array_equal(start[0], published[0])  # dense1/kernel came from the published model
    assert start[-2].shape == (64, 4) and published[-2].shape == (64, 3)


def test_a_changed_shape_outside_train_layers_is_refused(tmp_path):
    folder, _ = publish_version_1(tmp_path / "pretrained")
    task = small_task(name="ft", labels=("p", "q", "r", "s"), init_from=str(folder))
    with pytest.raises(ValueError, match=r"expected logits/kernel of shape \(64, 4\), got shape \(64, 3\)"):
        Coordinator([task], tmp_path / "ft")


def test_a_tampered_or_foreign_model_is_refused(tmp_path):
    folder, _ = publish_version_1(tmp_path / "pretrained")
    model = folder / registry.MODEL
    data = bytearray(model.read_bytes())
    data[100] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"init_from: .*the model file does not match its manifest"):
        Coordinator([small_task(name="ft", init_from=str(folder))], tmp_path / "ft")
    foreign = tmp_path / "copied"
    foreign.mkdir()
    for name in (registry.MODEL, registry.MANIFEST, registry.SIGNATURE):
        (foreign / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(ValueError, match="a task starts only from a model its coordinator can verify"):
        Coordinator([small_task(name="ft", init_from=str(foreign))], tmp_path / "ft2")


@pytest.fixture
def head_service(tmp_path):
    """A daemon whose task trains only its logits layer."""
    settings = ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path / "coordinator", max_message_mb=1)
    running = start(settings, [small_task(train_layers=("logits",))])
    channel = grpc.insecure_channel(running.address)
    stubs = coordinator_pb2_grpc.CoordinatorStub(channel), admin_pb2_grpc.AdminStub(channel)
    yield Service(running, *stubs, running.coordinator.admin_credential)
    channel.close()
    running.stop(grace=0.5)


def test_clients_train_and_report_only_the_named_layers(head_service, refused):
    credential = head_service.enroll()
    assignment = head_service.assignment(credential)
    assert list(assignment.trainable) == HEAD
    head = [t for t in assignment.tensors if t.name in HEAD]
    delta = [np.full(tuple(t.shape), 0.5, np.float32) for t in head]

    full = head_service.chunks(credential, assignment)  # every tensor: not what this task takes
    code, details = refused(lambda: head_service.stub.UploadUpdate(iter(full)))
    accepted = head_service.stub.UploadUpdate(iter(head_service.chunks(credential, assignment, delta, tensors=head)))

    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "expected 2 tensors, got 6")
    assert accepted.message == "accepted"


def test_a_fine_tuning_simulation_changes_only_the_head_and_uploads_less(tmp_path):
    base = {"dataset": "synthetic-imu", "rounds": 2, "local_epochs": 1, "publish": "every"}
    run(SimulationConfig(**base), tmp_path / "pre")
    folder = tmp_path / "pre" / "coordinator" / "registry" / "simulation" / "2"
    run(SimulationConfig(**base, init_from=str(folder), train_layers=("logits",)), tmp_path / "ft")

    key_pre = registry.load(registry.key_path(tmp_path / "pre" / "coordinator")).public_key()
    key_ft = registry.load(registry.key_path(tmp_path / "ft" / "coordinator")).public_key()
    _, before = registry.read_published(folder, key_pre)
    _, after = registry.read_published(tmp_path / "ft" / "coordinator" / "registry" / "simulation" / "2", key_ft)
    from fedge.shared.onnx.weights import read_weights

    names = Model(read_weights(before)[0]).parameter_names
    changed = [
        n for n, a, b in zip(names, read_weights(before)[1], read_weights(after)[1], strict=True) if (a != b).any()
    ]
    assert changed == ["logits/kernel", "logits/bias"]
