"""The Store goes away under the running app (runs after the tests that need the first
Store's handle: the pipeline actors hold it)."""

from __future__ import annotations

import time

import httpx

from tests.integration.conftest import RaySession


def test_health_is_503_while_the_store_is_down_and_recovers(
    api: httpx.Client, ray_session: RaySession
) -> None:
    import ray

    from actors.system import start_store, store_handle
    from tests.integration.conftest import KEEP_ALIVE, RAY_TIMEOUT_S

    ray.get(store_handle().stop.remote(), timeout=RAY_TIMEOUT_S)
    ray.kill(store_handle(), no_restart=True)
    deadline = time.monotonic() + 30
    response = api.get("/health")
    while response.status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = api.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"]["store"]["status"] == "down"
    assert body["components"]["api"]["status"] == "up"
    assert api.post("/webhook", content=b"{}").status_code == 503  # not a 500
    KEEP_ALIVE.append(start_store(ray_session.settings, timeout_s=RAY_TIMEOUT_S))
    assert api.get("/health").status_code == 200  # the app looked the new Store up by name
