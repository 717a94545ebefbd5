"""Exported models compute what the engine computes, behind a channels-last interface."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.onnx.export import export
from fedge.shared.onnx.weights import read_weights

TOLERANCE = 1e-4

SAME_STRIDE_2 = {
    "name": "same-stride-2",
    "input_shape": [9, 11, 2],
    "layers": [  # no ReLU before the pool: 'same' max pooling must ignore its padding, not read zeros
        {"type": "conv2d", "name": "even", "filters": 4, "kernel_size": [4, 2], "strides": 2, "padding": "same"},
        {"type": "maxpool2d", "name": "pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "conv2d", "name": "odd", "filters": 3, "kernel_size": 3, "strides": [2, 1], "padding": "same"},
        {"type": "flatten", "name": "flatten"},
        {"type": "dense", "name": "logits", "units": 5},
    ],
}
SEQUENCE_BRANCHES = {
    "name": "sequence-branches",
    "input_shape": [13, 3],
    "layers": [
        {"type": "conv1d", "name": "wide", "filters": 5, "kernel_size": 4, "strides": 2, "padding": "same"},
        {"type": "maxpool1d", "name": "pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "conv1d", "name": "narrow", "inputs": ["input"], "filters": 4, "kernel_size": 2, "strides": 3},
        {"type": "concat", "name": "joined", "inputs": ["pool", "narrow"]},
        {"type": "relu", "name": "relu"},
        {"type": "dropout", "name": "dropout", "rate": 0.5},
        {"type": "flatten", "name": "flatten"},
        {"type": "dense", "name": "logits", "units": 3, "use_bias": False},
    ],
}
SPATIAL_OUTPUT = {
    "name": "spatial-output",
    "input_shape": [6, 5, 2],
    "layers": [  # concat of the channels-last input with a channels-first conv, then logits per pixel
        {"type": "conv2d", "name": "same", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "concat", "name": "skip", "inputs": ["input", "same"]},
        {"type": "conv2d", "name": "head", "filters": 4, "kernel_size": 1},
    ],
}

SEQUENCE_NORMS = {
    "name": "sequence-norms",
    "input_shape": [10, 6],
    "layers": [  # a group norm on the channels-last input, one after a conv, and one per-pixel output
        {"type": "groupnorm", "name": "input_norm", "groups": 3},
        {"type": "conv1d", "name": "conv", "filters": 4, "kernel_size": 3, "use_bias": False},
        {"type": "groupnorm", "name": "conv_norm", "groups": 2, "activation": "relu", "epsilon": 0.01},
        {"type": "groupnorm", "name": "head", "groups": 1},
    ],
}


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def assert_matches_engine(model, x, engine, onnx_runtime) -> None:
    expected = engine(model, x)
    got = onnx_runtime(export(model.spec, model.get_weights()), x)
    assert got["logits"].shape == expected.shape
    np.testing.assert_allclose(got["logits"], expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(got["probabilities"], softmax(expected), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("batch", [1, 7])
def test_every_zoo_model_gives_the_engine_s_logits_and_probabilities(zoo_model, batch, engine, onnx_runtime):
    x = np.random.default_rng(batch).standard_normal((batch, *zoo_model.input_shape)).astype(np.float32)
    assert_matches_engine(zoo_model, x, engine, onnx_runtime)


@pytest.mark.parametrize(
    "spec", [SAME_STRIDE_2, SEQUENCE_BRANCHES, SPATIAL_OUTPUT, SEQUENCE_NORMS], ids=lambda s: s["name"]
)
@pytest.mark.parametrize("batch", [1, 7])
def test_tf_padding_strides_and_branches_give_the_engine_s_outputs(spec, batch, build, engine, onnx_runtime):
    model = build(spec, seed=3)
    x = np.random.default_rng(batch).standard_normal((batch, *model.input_shape)).astype(np.float32)
    assert_matches_engine(model, x, engine, onnx_runtime)


@pytest.mark.parametrize("name", ["mlp", "digits-cnn", "squeezenet-mini"])
def test_real_fashion_mnist_images_give_the_engine_s_outputs(name, fashion, build, engine, onnx_runtime):
    model = build(model_spec(name, (28, 28, 1), 10), seed=5)
    assert_matches_engine(model, fashion.train.x[:16], engine, onnx_runtime)


def test_input_is_channels_last_float32_with_a_symbolic_batch(build):
    exported = export(*_spec_and_weights(build, "digits-cnn", (28, 28, 1)))

    (graph_input,) = exported.graph.input
    tensor = graph_input.type.tensor_type
    assert graph_input.name == "input"
    assert tensor.elem_type == onnx.TensorProto.FLOAT
    assert tensor.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in tensor.shape.dim[1:]] == [28, 28, 1]
    assert [o.name for o in exported.graph.output] == ["logits", "probabilities"]
    assert [d.dim_value for d in exported.graph.output[0].type.tensor_type.shape.dim[1:]] == [10]


def test_without_probabilities_only_logits_are_output(build):
    exported = export(*_spec_and_weights(build, "mlp", (60,)), probabilities=False)

    assert [o.name for o in exported.graph.output] == ["logits"]
    assert all(node.op_type != "Softmax" for node in exported.graph.node)


def test_initializers_carry_the_engine_s_parameter_names_and_values(build):
    model = build(model_spec("digits-cnn", (28, 28, 1), 10), seed=0)
    exported = export(model.spec, model.get_weights())

    stored = {t.name: onnx.numpy_helper.to_array(t) for t in exported.graph.initializer}
    assert list(stored) == model.parameter_names
    weights = dict(zip(model.parameter_names, model.get_weights(), strict=True))
    np.testing.assert_array_equal(stored["conv1/kernel"], weights["conv1/kernel"].transpose(3, 2, 0, 1))  # OIHW
    np.testing.assert_array_equal(stored["logits/kernel"], weights["logits/kernel"])
    np.testing.assert_array_equal(stored["logits/bias"], weights["logits/bias"])


def test_model_names_its_producer_opset_layout_and_spec(build):
    spec, weights = _spec_and_weights(build, "har-cnn1d", (100, 6))
    exported = export(spec, weights)

    props = {p.key: p.value for p in exported.metadata_props}
    assert (exported.producer_name, exported.graph.name) == ("fedge", "har-cnn1d")
    assert "input 'input' float32 (batch, 100, 6), channels-last" in exported.doc_string
    assert [(o.domain, o.version) for o in exported.opset_import] == [("", 17)]
    assert exported.ir_version == 8  # the oldest IR with opset 17: onnxruntime >= 1.13 loads it
    assert json.loads(props["fedge.spec"]) == spec
    assert (props["fedge.input_layout"], props["fedge.quantization"]) == ("NWC", "fp32")


def test_a_newer_opset_exports_the_same_outputs(build, onnx_runtime):
    spec, weights = _spec_and_weights(build, "squeezenet-mini", (28, 28, 1))
    x = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype(np.float32)

    newer = export(spec, weights, opset=21)

    assert newer.opset_import[0].version == 21
    np.testing.assert_allclose(onnx_runtime(newer, x)["logits"], onnx_runtime(export(spec, weights), x)["logits"])


def test_a_hidden_layer_named_like_an_output_does_not_clash(build, engine, onnx_runtime):
    spec = {
        "name": "clash",
        "input_shape": [4],
        "layers": [
            {"type": "dense", "name": "probabilities", "units": 3, "activation": "relu"},
            {"type": "dense", "name": "logits", "units": 2},
        ],
    }
    model = build(spec)
    assert_matches_engine(model, np.ones((2, 4), np.float32), engine, onnx_runtime)


def test_weights_that_do_not_fit_are_refused(build):
    spec, weights = _spec_and_weights(build, "mlp", (60,))

    with pytest.raises(ValueError, match=r"tensor 0: expected shape \(60, 64\), got \(64, 60\)"):
        export(spec, [weights[0].T, *weights[1:]])
    with pytest.raises(ValueError, match="expected 6 tensors, got 5"):
        export(spec, weights[:-1])


def test_an_opset_older_than_13_is_refused(build):
    with pytest.raises(ValueError, match=r"expected an opset from 13 to \d+, got 11"):
        export(*_spec_and_weights(build, "mlp", (60,)), opset=11)


def _spec_and_weights(build, name: str, shape: tuple[int, ...]) -> tuple[dict, list[np.ndarray]]:
    model = build(model_spec(name, shape, 10), seed=0)
    return model.spec, model.get_weights()


@pytest.mark.parametrize("name", ["har-cnn1d", "digits-cnn", "squeezenet-mini"])
def test_an_exported_model_reads_back_as_its_spec_and_weights(name):
    shapes = {"har-cnn1d": (32, 6), "digits-cnn": (20, 20, 1), "squeezenet-mini": (12, 12, 3)}
    spec = model_spec(name, shapes[name], 5)
    weights = Model(spec, seed=2).get_weights()
    spec_back, weights_back = read_weights(export(spec, weights).SerializeToString())
    assert spec_back == spec
    for a, b in zip(weights, weights_back, strict=True):  # conv kernels and group norms' (C, 1, 1) moved back
        np.testing.assert_array_equal(a, b)
