"""Every zoo model with random weights, and the two ways to run it: the engine and ONNX Runtime."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fedge.shared.data import Splits, load
from fedge.shared.models import model_spec
from fedge.shared.nn import Model, no_grad, test_mode

ZOO_CASES = [
    ("mlp", (20, 3)),
    ("mlp", (60,)),
    ("har-cnn1d", (100, 6)),
    ("digits-cnn", (28, 28, 1)),
    ("squeezenet-mini", (28, 28, 1)),
    ("squeezenet-mini", (32, 32, 3)),
]
CLASSES = 10


def random_model(spec: dict, seed: int = 0) -> Model:
    """The engine's Glorot kernels, and random biases too, so that a dropped bias shows."""
    model = Model(spec, seed=seed)
    rng = np.random.default_rng(seed + 1)
    model.set_weights(
        [w if name.endswith("/kernel") else rng.normal(0.0, 0.1, w.shape).astype(np.float32)
         for name, w in zip(model.parameter_names, model.get_weights(), strict=True)]
    )  # fmt: skip
    return model


def engine_logits(model: Model, x: np.ndarray) -> np.ndarray:
    with test_mode(), no_grad():
        return np.asarray(model(x).data)


def run_onnx(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


def case_id(case: tuple[str, tuple[int, ...]]) -> str:
    return f"{case[0]}-{'x'.join(map(str, case[1]))}"


@pytest.fixture(params=ZOO_CASES, ids=case_id)
def zoo_model(request) -> Model:
    name, shape = request.param
    return random_model(model_spec(name, shape, CLASSES), seed=0)


@pytest.fixture(scope="session")
def fashion(load_or_skip) -> Splits:
    """100 real Fashion-MNIST training images (10 per class) and the 10000 held-out ones."""
    return load_or_skip(lambda: load("fashion-mnist", limit=100))


@pytest.fixture
def build() -> Callable[..., Model]:
    return random_model


@pytest.fixture
def engine() -> Callable[[Model, np.ndarray], np.ndarray]:
    return engine_logits


@pytest.fixture
def onnx_runtime() -> Callable[[onnx.ModelProto, np.ndarray], dict[str, np.ndarray]]:
    return run_onnx
