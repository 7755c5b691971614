"""One local Ray for the whole integration session (2 CPUs, no dashboard, small store).

The API is deployed once per session on Ray Serve with direct ingress on a free port,
with a Store actor over a DuckDB file in a session temp directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.settings import Settings, load_settings
from tests.conftest import free_port

RAY_TIMEOUT_S = 60.0
SIM_START = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)  # 10:00 ET, a Monday in spy-2013-10
KEEP_ALIVE: list[Any] = []  # actor handles a test replaced and later tests still need
WEBHOOK_SECRET = "integration-webhook-secret"
URL_TOKEN = "integration-url-token"
HMAC_SECRET = "integration-hmac-secret"


@dataclass(frozen=True)
class RaySession:
    api_port: int
    data_dir: Path

    @property
    def environ(self) -> dict[str, str]:
        return {
            "TANDEM_DATA_DIR": str(self.data_dir),
            "TANDEM_PORT": str(self.api_port),
            "TANDEM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TANDEM_WEBHOOK_URL_TOKEN": URL_TOKEN,
            "TANDEM_WEBHOOK_HMAC_SECRET": HMAC_SECRET,
            "TANDEM_WEBHOOK_BURST": "60",
            "TANDEM_WEBHOOK_RATE_PER_MIN": "1",
            "TANDEM_CLOCK": "sim",
            "TANDEM_SIM_START": SIM_START.isoformat(),
        }

    @property
    def settings(self) -> Settings:
        return load_settings(self.environ)


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaySession]:
    import ray

    from api.serve_app import direct_ingress_env

    session = RaySession(free_port(), tmp_path_factory.mktemp("tandem"))
    env = direct_ingress_env(session.api_port)
    os.environ.update(env)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        namespace="tandem",  # the app looks its actors up in this namespace
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    try:
        yield session
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def api(ray_session: RaySession) -> Iterator[Any]:
    """The real app on Ray Serve; yields an httpx client bound to its base URL."""
    from actors.system import (
        start_clock,
        start_engine_one,
        start_engine_two,
        start_marketdata,
        start_store,
    )
    from api.serve_app import deploy

    settings = ray_session.settings
    store = start_store(settings, timeout_s=RAY_TIMEOUT_S)  # keep the handle: it keeps the actor
    clock = start_clock(settings, timeout_s=RAY_TIMEOUT_S)
    marketdata = start_marketdata(timeout_s=RAY_TIMEOUT_S, store=store)
    engine_two = start_engine_two(settings, store, marketdata, clock)
    workers = start_engine_one(settings, store, marketdata, clock, router=engine_two["router"])
    deploy(settings.host, settings.port, "direct", ray_session.environ)
    base = f"http://{settings.host}:{settings.port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        wait_for_health(client, RAY_TIMEOUT_S)
        yield client
    del store, clock, marketdata, workers, engine_two


def wait_for_health(client: httpx.Client, timeout_s: float) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = client.get("/health")
            if response.status_code == 200:
                return response
            last = AssertionError(f"{response.status_code} {response.text[:500]}")
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"/health did not answer 200 within {timeout_s} s ({last})")
