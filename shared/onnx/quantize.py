"""int8 models for small devices, made with ONNX Runtime's quantisation tools.

Which tool, per model:

    no Conv (dense models)       quantize_dynamic: MatMul weights int8; activations quantised per
                                 batch at run time, so no calibration data is needed or used
    Conv, calibration samples    quantize_static, QDQ: Conv/MatMul weights int8 per output
                                 channel, their input activations uint8 with ranges calibrated
                                 (MinMax) on the samples; ONNX Runtime fuses the pairs into
                                 QLinearConv. Only Conv and MatMul: a group norm's statistics and
                                 per-channel scale stay in float (quantising them too was larger
                                 and less accurate)
    Conv, no samples             quantize_dynamic (ConvInteger): data-free, as small as static,
                                 but several times slower than fp32 on CPU; pass samples if you can

Weights use 7 bits (``reduce_range``): x86 CPUs without VNNI multiply uint8 by int8 with a
saturating instruction, and full 8-bit weights there flipped up to one argmax in eight in our tests.
docs/onnx.md has the measurements.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx

CALIBRATION_BATCH = 32


def _samples(input_name: str, samples: np.ndarray) -> Any:
    """A reader that feeds calibration samples to the model's input in batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class Samples(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(
                {input_name: samples[i : i + CALIBRATION_BATCH]} for i in range(0, len(samples), CALIBRATION_BATCH)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return Samples()


def quantize_int8(model: onnx.ModelProto, calibration: np.ndarray | None = None) -> onnx.ModelProto:
    """An int8 copy of an exported model; ``calibration`` (N, *input_shape) serves conv models."""
    # imported here: onnxruntime's quantisation tools take a tenth of a second to import
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    source = onnx.ModelProto()
    source.CopyFrom(model)  # the quantisers rewrite the model they are given
    convolutional = any(node.op_type == "Conv" for node in model.graph.node)
    with tempfile.TemporaryDirectory(prefix="fedge-int8-") as folder, _quiet_advice():
        target = Path(folder) / "int8.onnx"
        if convolutional and calibration is not None:
            samples = _check_calibration(model, calibration)
            quantize_static(
                source,
                target,
                _samples(model.graph.input[0].name, samples),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
                calibrate_method=CalibrationMethod.MinMax,
                op_types_to_quantize=["Conv", "MatMul"],
            )
            method = f"static QDQ, uint8 activations calibrated on {len(samples)} samples, int8 weights per channel"
        else:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, reduce_range=True)
            method = "dynamic, int8 weights, activations quantised at run time"
        result = onnx.load(target)
    _carry_metadata(model, result, method)
    return result


class _Advice(logging.Filter):
    """ONNX Runtime's tools log "Please consider pre-processing…" on the root logger at every
    call: advice for people running them by hand, noise in a coordinator's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider")


@contextmanager
def _quiet_advice() -> Iterator[None]:
    advice = _Advice()
    logging.getLogger().addFilter(advice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(advice)


def _check_calibration(model: onnx.ModelProto, calibration: np.ndarray) -> np.ndarray:
    dims = model.graph.input[0].type.tensor_type.shape.dim[1:]
    expected = tuple(d.dim_value for d in dims)
    samples = np.asarray(calibration, dtype=np.float32)
    if samples.ndim != len(expected) + 1 or samples.shape[1:] != expected or len(samples) == 0:
        raise ValueError(
            f"expected calibration samples (N >= 1, {', '.join(map(str, expected))}), got shape {samples.shape}"
        )
    return samples


def _carry_metadata(model: onnx.ModelProto, result: onnx.ModelProto, method: str) -> None:
    """The fp32 model's description and properties, plus how it was quantised."""
    result.doc_string = model.doc_string
    result.producer_name, result.producer_version = model.producer_name, model.producer_version
    props = {p.key: p.value for p in model.metadata_props}
    props |= {p.key: p.value for p in result.metadata_props}
    props["fedge.quantization"] = "int8"
    props["fedge.quantization_method"] = method
    onnx.helper.set_model_props(result, props)
