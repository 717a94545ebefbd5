"""The committed generated code is what protos/ generates today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_not_stale(tmp_path):
    fresh = {p.name: p.read_bytes() for p in load_generator().generate(tmp_path)}
    committed = {p.name: p.read_bytes() for p in (ROOT / "shared" / "proto").iterdir() if p.is_file()}
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"run scripts/gen_protos.py: stale or extra generated files {stale}"
