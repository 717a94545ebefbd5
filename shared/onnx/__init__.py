"""Publishing models as ONNX: export a spec and its weights, optionally quantise to int8.

    export(spec, weights) -> onnx.ModelProto       channels-last "input" -> "logits", "probabilities"
    quantize_int8(model, calibration) -> onnx.ModelProto
    runtime.session / probabilities / evaluate          run a published model with ONNX Runtime
    weights.read_weights(model_bytes) -> spec, weights  start training from a published model

`docs/onnx.md` shows the exported interface and how to run a model with onnxruntime.
"""

from __future__ import annotations

from fedge.shared.onnx.export import export
from fedge.shared.onnx.quantize import quantize_int8

__all__ = ["export", "quantize_int8"]
