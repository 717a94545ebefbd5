"""The model zoo: specs for the networks fedge trains on devices.

Each entry is a function ``(input_shape, num_classes) -> spec``; the spec is plain JSON so the
Python engine, the TF.js trainer and the ONNX exporter build the very same network.

- ``mlp``             flatten → dense 64 → dense 64 → logits; any input.
- ``har-cnn1d``       two conv1d blocks over (window, channels) sensor windows → dense → logits.
- ``digits-cnn``      the TF.js digits tutorial: conv 5×5×8 → pool 2 → conv 5×5×16 → pool 2 → dense.
- ``squeezenet-mini`` SqueezeNet (Iandola et al. 2016) fire modules sized for 28×28 / 32×32 images,
                      each convolution group-normalised (Wu & He 2018).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Spec = dict[str, Any]
Shape = tuple[int, ...]


def mlp(input_shape: Shape, num_classes: int) -> Spec:
    return _spec(
        "mlp",
        input_shape,
        [
            {"type": "flatten", "name": "flatten"},
            {"type": "dense", "name": "dense1", "units": 64, "activation": "relu"},
            {"type": "dense", "name": "dense2", "units": 64, "activation": "relu"},
            {"type": "dense", "name": "logits", "units": num_classes},
        ],
    )


def har_cnn1d(input_shape: Shape, num_classes: int) -> Spec:
    return _spec(
        "har-cnn1d",
        input_shape,
        [
            {"type": "conv1d", "name": "conv1", "filters": 16, "kernel_size": 5, "activation": "relu"},
            {"type": "maxpool1d", "name": "pool1", "pool_size": 2},
            {"type": "conv1d", "name": "conv2", "filters": 32, "kernel_size": 5, "activation": "relu"},
            {"type": "maxpool1d", "name": "pool2", "pool_size": 2},
            {"type": "flatten", "name": "flatten"},
            {"type": "dense", "name": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "name": "logits", "units": num_classes},
        ],
    )


def digits_cnn(input_shape: Shape, num_classes: int) -> Spec:
    return _spec(
        "digits-cnn",
        input_shape,
        [
            {"type": "conv2d", "name": "conv1", "filters": 8, "kernel_size": 5, "activation": "relu"},
            {"type": "maxpool2d", "name": "pool1", "pool_size": 2},
            {"type": "conv2d", "name": "conv2", "filters": 16, "kernel_size": 5, "activation": "relu"},
            {"type": "maxpool2d", "name": "pool2", "pool_size": 2},
            {"type": "flatten", "name": "flatten"},
            {"type": "dense", "name": "logits", "units": num_classes},
        ],
    )


# Each convolution feeds a group norm that applies the ReLU. Without normalisation SqueezeNet
# sat near chance for its first rounds; with group norms it trains from round 1 (BatchNorm's
# statistics would differ per label-skewed device). docs/onnx.md has the federated numbers.
LINEAR = {"kernel_initializer": "he_uniform", "use_bias": False}  # the norm's offset is the bias


def norm(name: str, source: str, channels: int) -> dict[str, Any]:
    """Group norm + ReLU after ``source``: 8 groups, or groups of 4 channels below 32 channels."""
    groups = min(8, channels // 4)
    return {"type": "groupnorm", "name": name, "inputs": [source], "groups": groups, "activation": "relu"}


def fire(name: str, source: str, squeeze: int, expand: int) -> list[dict[str, Any]]:
    """A fire module: 1×1 squeeze, then parallel 1×1 and 3×3 expands joined on channels."""
    return [
        {
            "type": "conv2d",
            "name": f"{name}_squeeze",
            "inputs": [source],
            "filters": squeeze,
            "kernel_size": 1,
            **LINEAR,
        },
        norm(f"{name}_squeeze_norm", f"{name}_squeeze", squeeze),
        {
            "type": "conv2d",
            "name": f"{name}_expand1",
            "inputs": [f"{name}_squeeze_norm"],
            "filters": expand,
            "kernel_size": 1,
            **LINEAR,
        },
        {
            "type": "conv2d",
            "name": f"{name}_expand3",
            "inputs": [f"{name}_squeeze_norm"],
            "filters": expand,
            "kernel_size": 3,
            "padding": "same",
            **LINEAR,
        },
        {"type": "concat", "name": f"{name}_concat", "inputs": [f"{name}_expand1", f"{name}_expand3"]},
        norm(name, f"{name}_concat", 2 * expand),
    ]


def squeezenet_mini(input_shape: Shape, num_classes: int) -> Spec:
    layers: list[dict[str, Any]] = [
        {"type": "conv2d", "name": "conv1", "filters": 32, "kernel_size": 3, "padding": "same", **LINEAR},
        norm("conv1_norm", "conv1", 32),
        {"type": "maxpool2d", "name": "pool1", "pool_size": 2},
        *fire("fire2", "pool1", 16, 32),
        *fire("fire3", "fire2", 16, 32),
        {"type": "maxpool2d", "name": "pool3", "pool_size": 2},
        *fire("fire4", "pool3", 32, 64),
        *fire("fire5", "fire4", 32, 64),
        {"type": "dropout", "name": "dropout", "rate": 0.3},
        {"type": "conv2d", "name": "classifier", "filters": num_classes, "kernel_size": 1},
        {"type": "globalavgpool", "name": "logits"},
    ]
    return _spec("squeezenet-mini", input_shape, layers)


def _spec(name: str, input_shape: Shape, layers: list[dict[str, Any]]) -> Spec:
    return {"name": name, "input_shape": list(input_shape), "layers": layers}


ZOO: dict[str, Callable[[Shape, int], Spec]] = {
    "mlp": mlp,
    "har-cnn1d": har_cnn1d,
    "digits-cnn": digits_cnn,
    "squeezenet-mini": squeezenet_mini,
}


def model_spec(name: str, input_shape: Shape, num_classes: int) -> Spec:
    """The zoo's spec for ``name`` sized to a dataset's samples and classes."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(ZOO)}")
    return ZOO[name](tuple(input_shape), int(num_classes))
