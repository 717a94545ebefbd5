"""int8 models run in ONNX Runtime, are smaller, and pick the fp32 model's class."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.shared.models import model_spec
from fedge.shared.onnx.export import export
from fedge.shared.onnx.quantize import quantize_int8

AGREEMENT = 0.95
MB = 1_000_000


def samples(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def agreement(fp32, int8, x, onnx_runtime) -> float:
    expected = onnx_runtime(fp32, x)["logits"].argmax(axis=-1)
    return float((onnx_runtime(int8, x)["logits"].argmax(axis=-1) == expected).mean())


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def ops(model) -> set[str]:
    return {node.op_type for node in model.graph.node}


def test_every_zoo_model_in_int8_is_smaller_and_agrees_with_fp32(zoo_model, onnx_runtime):
    fp32 = export(zoo_model.spec, zoo_model.get_weights())
    x = samples(zoo_model.input_shape, 300, seed=2)

    int8 = quantize_int8(fp32, calibration=samples(zoo_model.input_shape, 64, seed=1))

    assert int8.ByteSize() < fp32.ByteSize()
    # An untrained model on noise has near-tied logits, so argmax agreement says little either
    # way (picked classes flip on tiny errors, or it picks one class whatever the input): the
    # logits themselves must stay close. Real images and their classes: the test below.
    expected, got = onnx_runtime(fp32, x)["logits"], onnx_runtime(int8, x)["logits"]
    assert rms(got - expected) <= 0.1 * rms(expected)


@pytest.mark.parametrize("name", ["mlp", "digits-cnn", "squeezenet-mini"])
def test_real_fashion_mnist_images_get_the_fp32_class(name, fashion, build, onnx_runtime):
    model = build(model_spec(name, (28, 28, 1), 10), seed=5)
    fp32 = export(model.spec, model.get_weights())

    int8 = quantize_int8(fp32, calibration=fashion.train.x)

    assert agreement(fp32, int8, fashion.heldout.x[:1000], onnx_runtime) >= AGREEMENT


def test_conv_models_are_calibrated_and_dense_models_quantised_at_run_time(build):
    conv = export(*_spec_and_weights(build, "digits-cnn", (28, 28, 1)))
    dense = export(*_spec_and_weights(build, "mlp", (60,)))

    static = quantize_int8(conv, calibration=samples((28, 28, 1), 32, seed=0))
    dynamic = quantize_int8(dense, calibration=samples((60,), 32, seed=0))

    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops(static)
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops(dynamic)


def test_a_conv_model_without_calibration_is_quantised_at_run_time(build, onnx_runtime):
    fp32 = export(*_spec_and_weights(build, "digits-cnn", (28, 28, 1)))

    int8 = quantize_int8(fp32)

    assert "ConvInteger" in ops(int8)
    assert agreement(fp32, int8, samples((28, 28, 1), 300, seed=2), onnx_runtime) >= AGREEMENT


def test_squeezenet_mini_fits_3_mb_in_fp32_and_1_mb_in_int8(build):
    fp32 = export(*_spec_and_weights(build, "squeezenet-mini", (32, 32, 3)))

    int8 = quantize_int8(fp32, calibration=samples((32, 32, 3), 64, seed=0))

    assert len(fp32.SerializeToString()) <= 3 * MB
    assert len(int8.SerializeToString()) <= 1 * MB


def test_the_fp32_model_is_left_untouched(build):
    fp32 = export(*_spec_and_weights(build, "digits-cnn", (28, 28, 1)))
    before = fp32.SerializeToString()

    quantize_int8(fp32, calibration=samples((28, 28, 1), 32, seed=0))

    assert fp32.SerializeToString() == before


def test_int8_model_keeps_the_interface_and_says_how_it_was_quantised(build):
    spec, weights = _spec_and_weights(build, "har-cnn1d", (100, 6))
    fp32 = export(spec, weights)

    int8 = quantize_int8(fp32, calibration=samples((100, 6), 32, seed=0))

    props = {p.key: p.value for p in int8.metadata_props}
    assert [i.name for i in int8.graph.input] == ["input"]
    assert [o.name for o in int8.graph.output] == ["logits", "probabilities"]
    assert (int8.producer_name, int8.doc_string) == ("fedge", fp32.doc_string)
    assert (props["fedge.quantization"], props["fedge.input_layout"]) == ("int8", "NWC")
    assert props["fedge.quantization_method"].startswith("static QDQ")
    assert props["fedge.spec"] == {p.key: p.value for p in fp32.metadata_props}["fedge.spec"]


def test_calibration_samples_of_another_shape_are_refused(build):
    fp32 = export(*_spec_and_weights(build, "digits-cnn", (28, 28, 1)))

    expected = r"expected calibration samples \(N >= 1, 28, 28, 1\), got shape \(4, 28, 28\)"
    with pytest.raises(ValueError, match=expected):
        quantize_int8(fp32, calibration=np.zeros((4, 28, 28), np.float32))


def _spec_and_weights(build, name: str, shape: tuple[int, ...]) -> tuple[dict, list[np.ndarray]]:
    model = build(model_spec(name, shape, 10), seed=0)
    return model.spec, model.get_weights()
