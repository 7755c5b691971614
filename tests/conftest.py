"""Test wiring shared by every suite.

- Hypothesis: a `ci` profile (no deadline, >= 100 examples) is loaded under CI, a
  `dev` profile otherwise.
- Unit and contract tests must never start Ray: an autouse fixture fails them if Ray is
  initialised when they finish. Integration tests use the session-scoped `ray_session`
  fixture from tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def free_port() -> int:
    """A TCP port nobody listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _ray_only_in_integration(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test outside tests/integration that leaves Ray initialised."""
    import sys

    in_integration = "tests/integration" in str(request.node.path).replace(os.sep, "/")
    yield
    if in_integration:
        return
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
        pytest.fail("a unit or contract test started Ray; only tests/integration may")
