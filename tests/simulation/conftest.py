from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance for every test of the ray backend (a start costs seconds); the
    backend joins it instead of starting its own, and leaves it running."""
    from fedge.simulation.cluster import import_ray, start_ray

    ray = import_ray()
    start_ray(ray)
    yield ray
    ray.shutdown()
