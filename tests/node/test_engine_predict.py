"""The page runs published models with its TF.js engine (client/js/src/registry/engine.js), reading
the spec and weights out of the ONNX file: its probabilities must be ONNX Runtime's for every zoo
model, and a file fedge did not export, or an int8 one, is refused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fedge.shared.models import model_spec
from fedge.shared.nn import Model
from fedge.shared.onnx import runtime
from fedge.shared.onnx.export import export
from tests.cohort import NODE_CLIENT, node_or_skip

ENGINE = NODE_CLIENT.parents[1] / "src" / "registry" / "engine.js"
SCRIPT = """
import { readFileSync, writeFileSync } from "node:fs";
import { predictWithEngine } from "%s";
const [model, x, shape, out] = process.argv.slice(1);
const manifest = { input: { shape: JSON.parse(shape) } };
const raw = readFileSync(x);
const samples = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
try {
  const probabilities = await predictWithEngine(manifest, new Uint8Array(readFileSync(model)), samples);
  writeFileSync(out, JSON.stringify(probabilities.map((p) => Array.from(p))));
} catch (error) {
  writeFileSync(out, JSON.stringify({ error: error.message }));
}
"""
# small inputs that keep every layer's extent above 1, as the engine's vectors do (scripts/gen_engine_vectors.py)
MODELS = {"mlp": (8, 3), "har-cnn1d": (32, 6), "digits-cnn": (20, 20, 1), "squeezenet-mini": (12, 12, 3)}


@pytest.fixture(scope="module")
def node() -> str:
    return node_or_skip()


def engine_predict(node: str, model: bytes, x: np.ndarray, tmp_path: Path) -> object:
    (tmp_path / "model.onnx").write_bytes(model)
    x.astype("<f4").tofile(tmp_path / "x.bin")
    shape = json.dumps(list(x.shape[1:]))
    args = [str(tmp_path / "model.onnx"), str(tmp_path / "x.bin"), shape, str(tmp_path / "out.json")]
    script = SCRIPT % ENGINE.as_uri()
    done = subprocess.run(
        [node, "--input-type=module", "-e", script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "out.json").read_text())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_engine_runs_a_published_model_as_onnx_runtime_does(node, tmp_path, name):
    spec = model_spec(name, MODELS[name], 5)
    onnx_bytes = export(spec, Model(spec, seed=3).get_weights()).SerializeToString()
    x = np.random.default_rng(0).normal(size=(7, *MODELS[name])).astype(np.float32)
    result = engine_predict(node, onnx_bytes, x, tmp_path)
    assert isinstance(result, list), result
    ours = np.array(result)
    theirs = runtime.probabilities(runtime.session(onnx_bytes), x)
    assert ours.shape == theirs.shape == (7, 5)
    assert np.allclose(ours, theirs, atol=1e-4), np.abs(ours - theirs).max()


def test_a_model_fedge_did_not_export_or_an_int8_one_is_refused(node, tmp_path):
    spec = model_spec("mlp", MODELS["mlp"], 5)
    model = export(spec, Model(spec, seed=3).get_weights())
    x = np.zeros((1, *MODELS["mlp"]), np.float32)
    del model.metadata_props[:]
    assert "expected a model exported by fedge" in engine_predict(node, model.SerializeToString(), x, tmp_path)["error"]
    model = export(spec, Model(spec, seed=3).get_weights())
    next(p for p in model.metadata_props if p.key == "fedge.quantization").value = "int8"
    refused = engine_predict(node, model.SerializeToString(), x, tmp_path)["error"]
    assert "expected an fp32 model, got a int8 one" in refused
    garbage = engine_predict(node, b"\xff" * 64, x, tmp_path)["error"]
    assert "do not parse as" in garbage or "expected a model exported by fedge" in garbage
