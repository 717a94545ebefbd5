"""Shared by every suite: the one rule for real datasets.

A test that needs a real dataset skips when it is not installed, unless
FEDGE_REQUIRE_DATASETS=1 (set by scripts/test.sh and CI), where a missing dataset fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from fedge.shared.data import DatasetUnavailable

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
