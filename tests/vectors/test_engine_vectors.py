"""The committed engine fixtures (tests/vectors/engine/) are what the engine computes today.

The JavaScript trainer is checked against these files, so a change to the engine that moves a
number by more than 1e-5 must come with regenerated files: scripts/gen_engine_vectors.py.
The margin is float32's across CPUs: numpy's OpenBLAS picks its kernels by CPU, and an AVX-512
machine's Adam steps (which divide by √v) left one har-cnn1d weight 3.4e-6 from an AVX2
machine's; the JS replay allows 5e-5.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_engine_vectors", ROOT / "scripts" / "gen_engine_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()


def tensors(content: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every float32 tensor in a file, by where it sits."""
    shapes = [p["shape"] for p in content["parameters"]]
    found = {
        f"weights[{i}]": GENERATOR.decode(w, s) for i, (w, s) in enumerate(zip(content["weights"], shapes, strict=True))
    }
    for key in ("x", "logits"):
        found[key] = GENERATOR.decode(content[key]["data"], content[key]["shape"])
    for case in content["cases"]:
        for i, (w, s) in enumerate(zip(case["weights"], shapes, strict=True)):
            found[f"{case['name']}.weights[{i}]"] = GENERATOR.decode(w, s)
    return found


def without_tensors(content: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in content.items() if k not in ("weights", "x", "logits", "loss")}
    rest["cases"] = [{k: v for k, v in case.items() if k not in ("weights", "losses")} for case in content["cases"]]
    return rest


def losses(content: dict[str, Any]) -> np.ndarray:
    return np.array([content["loss"], *(x for case in content["cases"] for x in case["losses"])])


@pytest.mark.parametrize("name", list(GENERATOR.MODELS))
def test_committed_engine_vectors_are_not_stale(name):
    fresh = GENERATOR.build(name)
    committed = json.loads(GENERATOR.path_for(name).read_text())
    assert without_tensors(committed) == without_tensors(fresh), f"run scripts/gen_engine_vectors.py: {name} changed"
    fresh_tensors, committed_tensors = tensors(fresh), tensors(committed)
    assert fresh_tensors.keys() == committed_tensors.keys()
    for key, value in fresh_tensors.items():
        assert committed_tensors[key].shape == value.shape, f"{name}: {key}"
        np.testing.assert_allclose(committed_tensors[key], value, rtol=0, atol=TOLERANCE, err_msg=f"{name}: {key}")
    np.testing.assert_allclose(losses(committed), losses(fresh), rtol=0, atol=TOLERANCE)


def test_a_changed_weight_is_noticed():
    """The comparison can fail: a fixture one weight off by 1e-4 is stale."""
    content = GENERATOR.build("mlp")
    first = GENERATOR.decode(content["weights"][0], content["parameters"][0]["shape"]).copy()
    first.flat[3] += 1e-4
    content["weights"][0] = GENERATOR.encode(first)
    fresh = tensors(GENERATOR.build("mlp"))
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(tensors(content)["weights[0]"], fresh["weights[0]"], rtol=0, atol=TOLERANCE)
