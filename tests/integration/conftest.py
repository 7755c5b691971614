"""One local Ray for the whole integration session (2 CPUs, no dashboard, small store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

RAY_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        namespace="tandem-tests",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
