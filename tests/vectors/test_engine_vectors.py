"""The committed engine fixtures (tests/vectors/engine/) are what the engine computes today.

The JavaScript trainer is checked against these files, so a change to the engine that moves a
number by more than 1e-5 must come with regenerated files: scripts/gen_engine_vectors.py.
The margin (the generator's TOLERANCE, which its --check uses too) is float32's across CPUs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_engine_vectors", ROOT / "scripts" / "gen_engine_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()


@pytest.mark.parametrize("name", list(GENERATOR.MODELS))
def test_committed_engine_vectors_are_not_stale(name):
    committed = json.loads(GENERATOR.path_for(name).read_text())
    assert GENERATOR.differences(committed, GENERATOR.build(name)) == [], f"run scripts/gen_engine_vectors.py: {name}"


def test_a_changed_weight_is_noticed():
    """The comparison can fail: a fixture one weight off by 1e-4 is stale."""
    content = GENERATOR.build("mlp")
    first = GENERATOR.decode(content["weights"][0], content["parameters"][0]["shape"]).copy()
    first.flat[3] += 1e-4
    content["weights"][0] = GENERATOR.encode(first)
    assert GENERATOR.differences(content, GENERATOR.build("mlp")) == ["weights[0]: 0.0001 off"]
