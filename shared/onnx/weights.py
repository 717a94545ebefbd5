"""An exported fp32 model read back as a spec and engine weights, so a task can start from a
published model (federated fine-tuning, docs/finetuning.md).

`export` stores the spec in the model's metadata and every parameter as an initializer under
its engine name; conv kernels were moved to ONNX's (O, C, *K) order and group norms' scales and
offsets to (C, 1, 1): both are moved back here.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from fedge.shared.nn import Model, Weights


def engine_layout(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An initializer back in the engine's layout, as ``export`` moved it: a conv kernel from
    (O, C, *K) to (*K, C, O); a per-channel vector stored to broadcast, (C, 1, 1), to (C,)."""
    if array.shape == shape:
        return array
    if array.ndim >= 3 and array.ndim == len(shape):
        return array.transpose(*range(2, array.ndim), 1, 0)
    if [d for d in array.shape if d != 1] == [d for d in shape if d != 1]:
        return array.reshape(shape)
    return array


def read_weights(model_bytes: bytes) -> tuple[dict[str, Any], Weights]:
    """The spec and the weights of a model that `export` wrote; anything else raises ValueError."""
    model = onnx.load_model_from_string(bytes(model_bytes))
    props = {p.key: p.value for p in model.metadata_props}
    if "fedge.spec" not in props:
        raise ValueError("expected a model exported by fedge (with fedge.spec metadata), got another ONNX file")
    if props.get("fedge.quantization", "fp32") != "fp32":
        raise ValueError(f"expected an fp32 model to train from, got a {props['fedge.quantization']} one")
    spec = json.loads(props["fedge.spec"])
    engine = Model(spec)
    stored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = []
    for name, parameter in zip(engine.parameter_names, engine.parameters(), strict=True):
        if name not in stored:
            raise ValueError(f"expected an initializer {name!r} in the model, got none")
        array = engine_layout(stored[name], parameter.shape)
        if array.shape != parameter.shape:
            raise ValueError(f"expected {name} of shape {parameter.shape}, got {array.shape}")
        weights.append(array.astype("float32"))
    return spec, weights
