"""The Registry service over real loopback gRPC: list and stream published models, refuse the unknown."""

from __future__ import annotations

import http.client
import json

import grpc
import pytest

from fedge.server.gateway import Gateway, GatewayThread
from fedge.server.publishing import Publisher
from fedge.shared import registry
from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.proto import registry_pb2 as rpb
from fedge.shared.proto import registry_pb2_grpc

from .conftest import small_task


@pytest.fixture
def published(service):
    """The service's coordinator with versions 1 and 2 of task t published (2 with an int8 copy)."""
    coordinator = service.running.coordinator
    task = small_task(publish="every", publish_every=1)
    spec = model_spec(task.model, task.input_shape, len(task.labels))
    publisher = Publisher(task, spec, coordinator.registry_root, coordinator.signing_key)
    weights = Model(spec, seed=0).get_weights()
    publisher.on_commit(1, weights, {"accuracy": 0.5})
    publisher.task = small_task(publish="every", publish_every=1, publish_int8=True)
    publisher.on_commit(2, weights, {"accuracy": 0.6})
    channel = grpc.insecure_channel(service.running.address)
    yield registry_pb2_grpc.RegistryStub(channel), coordinator.signing_key.public_key()
    channel.close()


def test_list_models_returns_signed_manifests_of_every_variant(published):
    stub, key = published
    models = stub.ListModels(rpb.ListModelsRequest()).models
    assert [(m.task_id, m.version, json.loads(m.manifest_json)["quantization"]) for m in models] == [
        ("t", 1, "fp32"),
        ("t", 2, "fp32"),
        ("t", 2, "int8"),
    ]
    for m in models:
        key.verify(m.signature, m.manifest_json)  # raises if the signature does not cover these bytes


def test_get_model_streams_the_newest_version_and_it_verifies(published):
    stub, key = published
    chunks = list(stub.GetModel(rpb.GetModelRequest(task_id="t")))
    head, model = chunks[0].model, b"".join(c.data for c in chunks[1:])
    manifest = registry.verify(key, head.manifest_json, head.signature, model)
    assert (head.version, manifest.version, manifest.quantization) == (2, 2, "fp32")


def test_get_model_by_version_and_variant(published):
    stub, key = published
    chunks = list(stub.GetModel(rpb.GetModelRequest(task_id="t", version=2, variant="int8")))
    manifest = registry.verify(key, chunks[0].model.manifest_json, chunks[0].model.signature, chunks[1].data)
    assert manifest.quantization == "int8"


@pytest.mark.parametrize(
    ("request_fields", "code", "sentence"),
    [
        ({"task_id": "nope"}, grpc.StatusCode.NOT_FOUND, "no published model for task 'nope'"),
        ({"task_id": "t", "version": 9}, grpc.StatusCode.NOT_FOUND, "task 't' has no published fp32 version 9"),
        ({"task_id": "t", "version": 1, "variant": "int8"}, grpc.StatusCode.NOT_FOUND, "no published int8 version 1"),
        ({"task_id": "t", "variant": "int4"}, grpc.StatusCode.INVALID_ARGUMENT, "expected a variant in fp32, int8"),
    ],
)
def test_get_model_refuses_what_was_not_published(published, refused, request_fields, code, sentence):
    stub, _ = published
    status, details = refused(lambda: list(stub.GetModel(rpb.GetModelRequest(**request_fields))))
    assert status == code and sentence in details


def test_models_are_served_over_http_by_the_gateway(published, service):
    stub, key = published
    gateway = GatewayThread(Gateway(service.running.address, port=0))
    address = gateway.start()
    try:
        listing = http_get(address, "/models")
        latest = http_get(address, "/models/t/latest/manifest.json")
        model = http_get(address, "/models/t/1/model.onnx")
        signature = http_get(address, "/models/t/1/manifest.sig")
        int8 = http_get(address, "/models/t/2/int8/manifest.json")
        missing = http_get(address, "/models/t/9/model.onnx")
        wrong = http_get(address, "/models/t/1/secret.txt")
    finally:
        gateway.stop()
    assert listing.status == 200 and [m["version"] for m in json.loads(listing.body)["models"]] == [1, 2, 2]
    assert latest.status == 200 and json.loads(latest.body)["version"] == 2
    assert latest.getheader("Cache-Control") == "no-cache"  # "latest" moves; a numbered version never does
    assert model.getheader("Cache-Control").endswith("immutable")
    manifest_json = stub.ListModels(rpb.ListModelsRequest()).models[0].manifest_json
    assert registry.verify(key, manifest_json, signature.body, model.body).version == 1
    assert json.loads(int8.body)["quantization"] == "int8"
    assert missing.status == 404 and b"has no published fp32 version 9" in missing.body
    assert wrong.status == 404 and b"no such model file" in wrong.body


def http_get(address: str, path: str) -> http.client.HTTPResponse:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response
