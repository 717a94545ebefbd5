from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for a module's tests of the ray backend (a start costs seconds): the
    backend joins it instead of starting its own, and leaves it running. It stops with the
    module, so that its idle processes do not slow the tests after it."""
    from fedge.simulation.cluster import import_ray, start_ray

    ray = import_ray()
    start_ray(ray)
    yield ray
    ray.shutdown()
