"""The one rule for real datasets: a test skips when one is not installed, unless
FEDGE_REQUIRE_DATASETS=1 (set in CI), where a missing dataset fails the run instead."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from fedge.shared.data import DatasetUnavailable, Splits
from fedge.shared.data.fashion_mnist import load_fashion_mnist
from fedge.shared.data.watch import load_watch, read_recordings

REQUIRE = "FEDGE_REQUIRE_DATASETS"


def _load_or_skip(loader: Callable[[], Any]) -> Any:
    try:
        return loader()
    except DatasetUnavailable as missing:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but a dataset is missing: {missing}")
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def load_or_skip() -> Callable[[Callable[[], Any]], Any]:
    return _load_or_skip


@pytest.fixture(scope="session")
def watch() -> Splits:
    return _load_or_skip(load_watch)


@pytest.fixture(scope="session")
def watch_recordings() -> dict[str, Any]:
    return _load_or_skip(read_recordings)


@pytest.fixture(scope="session")
def fashion() -> Splits:
    return _load_or_skip(load_fashion_mnist)
