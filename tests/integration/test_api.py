"""The real app on Ray Serve over real HTTP."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx

from tests.integration.conftest import RaySession


def test_health_reports_every_component(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"api", "ray", "store", "event_log"}
    assert all(c["status"] == "up" for c in body["components"].values())
    assert body["uptime_s"] >= 0
    assert body["components"]["store"]["detail"]["ok"] is True
    assert "checked_at" in body["components"]["event_log"]


def test_unknown_route_is_a_typed_json_404(api: httpx.Client) -> None:
    response = api.get("/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_openapi_docs_are_served(api: httpx.Client) -> None:
    assert api.get("/openapi.json").json()["info"]["title"] == "Tandem"
    assert api.get("/docs").status_code == 200


def test_the_port_survives_a_replica_restart(api: httpx.Client, ray_session: RaySession) -> None:
    old_pid = api.get("/health").json()["components"]["api"]["detail"]["pid"]
    for _ in range(20):  # leave server-side connections behind, as real traffic does
        with httpx.Client(base_url=str(api.base_url), timeout=5) as fresh:
            assert fresh.get("/health", headers={"Connection": "close"}).status_code == 200
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 90
    new_pid: Any = None
    while time.monotonic() < deadline:
        try:
            with httpx.Client(base_url=str(api.base_url), timeout=5) as fresh:
                response = fresh.get("/health")
            pid = response.json()["components"]["api"]["detail"]["pid"]
            if response.status_code == 200 and pid != old_pid:
                new_pid = pid
                break
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    assert new_pid is not None, "no new replica answered on the configured port"
    assert str(ray_session.api_port) in str(api.base_url)
