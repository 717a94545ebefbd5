"""The one way every secagg test reads the golden vectors, and the generator that wrote them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

VECTORS = Path(__file__).parents[2] / "vectors" / "secagg"


def load_vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secagg_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def vector() -> Any:
    return load_vector


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()
