"""The golden vector, the generator that wrote it, and the signed model every registry test starts from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fedge.shared.registry import Manifest, SigningKey

VECTORS = Path(__file__).parents[2] / "vectors" / "registry"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("registry_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def vector() -> dict[str, Any]:
    return json.loads((VECTORS / "ed25519.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture
def fields(generator) -> dict[str, Any]:
    """The vector's manifest fields, less sha256 and size (Manifest.for_bytes adds them)."""
    return generator.manifest_fields()


@pytest.fixture
def model(generator) -> bytes:
    return generator.model_bytes()


@pytest.fixture
def manifest(model, fields) -> Manifest:
    return Manifest.for_bytes(model, **fields)


@pytest.fixture
def key(vector) -> SigningKey:
    return SigningKey.from_bytes(bytes.fromhex(vector["private_key"]))
