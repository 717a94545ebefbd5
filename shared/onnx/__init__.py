"""Publishing models as ONNX: export a spec and its weights, optionally quantise to int8.

    export(spec, weights) -> onnx.ModelProto       channels-last "input" -> "logits", "probabilities"
    quantize_int8(model, calibration) -> onnx.ModelProto
    runtime.session / probabilities / evaluate          run a published model with ONNX Runtime
    weights.read_weights(model_bytes) -> spec, weights  start training from a published model

`docs/onnx.md` shows the exported interface and how to run a model with onnxruntime.

The package imports nothing itself: ``export`` and ``quantize`` need the ``onnx`` package, whose
import costs most of a second here, while running a published model (``runtime``, what
``fedge models predict`` uses) needs only ONNX Runtime.
"""
