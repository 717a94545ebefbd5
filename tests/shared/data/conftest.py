"""Real datasets loaded once per session, through the skip-or-fail rule of tests/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest

from fedge.shared.data import Splits
from fedge.shared.data.fashion_mnist import load_fashion_mnist
from fedge.shared.data.watch import load_watch, read_recordings


@pytest.fixture(scope="session")
def watch(load_or_skip) -> Splits:
    return load_or_skip(load_watch)


@pytest.fixture(scope="session")
def watch_recordings(load_or_skip) -> dict[str, Any]:
    return load_or_skip(read_recordings)


@pytest.fixture(scope="session")
def fashion(load_or_skip) -> Splits:
    return load_or_skip(load_fashion_mnist)
