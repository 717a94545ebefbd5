"""Running a published model with ONNX Runtime: what `fedge models predict` and the publisher's
int8 check do, and what a user's own script does (docs/onnx.md)."""

from __future__ import annotations

import numpy as np

BATCH = 256


def session(model_bytes: bytes) -> object:
    """An ONNX Runtime session on the CPU, one thread per core; onnxruntime is imported here so
    that a device that never predicts never loads it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are not the user's business
    return ort.InferenceSession(bytes(model_bytes), options, providers=["CPUExecutionProvider"])


def probabilities(model: object, x: np.ndarray) -> np.ndarray:
    """Class probabilities for the samples ``x`` (N, *input_shape), in batches."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = [model.run(["probabilities"], {"input": x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def evaluate(model: object, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Held-out loss and accuracy, measured the way the engine's evaluation reports them."""
    p = probabilities(model, x)
    picked = np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)
    return {"loss": float(-np.log(picked).mean()), "accuracy": float((p.argmax(axis=1) == y).mean())}
