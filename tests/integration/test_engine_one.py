"""Engine 1 end to end on real Ray + Serve + DuckDB: alert → decision → order → fill →
position, then an exit alert closes it. The run's clock is simulated (10:00 ET on
2013-10-07, a session of the bundled `spy-2013-10` replay)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.tokens import Role, issue_token
from tests.integration.conftest import WEBHOOK_SECRET, RaySession


def viewer(session: RaySession) -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, 't', Role.VIEWER, datetime.now(UTC))}"}


def post(api: httpx.Client, **fields: Any) -> int:
    body = {"symbol": "IBM", "timeframe": "1", "secret": WEBHOOK_SECRET, **fields}
    response = api.post("/webhook", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["signal_id"])


def trail_when(api: httpx.Client, session: RaySession, signal_id: int, done: Any) -> Any:
    deadline = time.monotonic() + 60
    trail: Any = None
    while time.monotonic() < deadline:
        trail = api.get(f"/signals/{signal_id}", headers=viewer(session)).json()
        if done(trail):
            return trail
        time.sleep(0.2)
    raise AssertionError(f"the pipeline did not finish signal {signal_id}: {trail}")


def test_an_alert_becomes_a_filled_option_position_and_an_exit_closes_it(
    api: httpx.Client, ray_session: RaySession
) -> None:
    entry = post(api, direction="long", timestamp="2013-10-07T13:58:00Z", strategy="e1")
    trail = trail_when(
        api,
        ray_session,
        entry,
        lambda t: t["positions"] or t["signal"]["status"] in ("rejected", "order_refused"),
    )
    assert trail["decision"]["decision"] == "approved", trail
    (order,) = trail["orders"]
    assert order["status"] == "filled" and order["asset_class"] == "option"
    assert order["option_right"] == "call" and order["side"] == "buy"
    (trade,) = trail["trades"]
    assert trade["quantity"] == order["quantity"] > 0
    (position,) = trail["positions"]
    assert position["status"] == "open" and position["avg_price"] == trade["price"]
    kinds = [e["kind"] for e in trail["events"]]
    assert kinds[:2] == ["signal_received", "signal_approved"]

    opposite = post(api, direction="short", timestamp="2013-10-07T13:58:00Z", strategy="e1")
    refused = trail_when(api, ray_session, opposite, lambda t: t["decision"] is not None)
    assert refused["decision"]["reason"] == "opposite_position_open"
    assert refused["orders"] == []

    exit_id = post(
        api,
        direction="sell",
        timestamp="2013-10-07T13:59:00Z",
        strategy="e1",
        market_position="flat",
        prev_market_position="long",
    )
    closed = trail_when(api, ray_session, exit_id, lambda t: t["trades"])
    (exit_order,) = closed["orders"]
    assert exit_order["intent"] == "exit" and exit_order["side"] == "sell"
    assert exit_order["position_id"] == position["position_id"]
    rows = api.get("/positions", params={"symbol": "IBM"}, headers=viewer(ray_session)).json()
    (after,) = [p for p in rows["items"] if p["position_id"] == position["position_id"]]
    assert after["status"] == "closed" and after["exit_reason"] == "exit_signal"
    expected = (closed["trades"][0]["price"] - trade["price"]) * trade["quantity"] * 100
    assert abs(after["realised_pnl"] - expected) < 1e-6


def test_a_worker_killed_mid_pipeline_restarts_and_the_signal_completes_with_one_order(
    api: httpx.Client, ray_session: RaySession
) -> None:
    import ray

    from actors.system import EXECUTOR_NAME, ORDER_CREATOR_NAME, PROCESSOR_NAME, named
    from tests.integration.conftest import RAY_TIMEOUT_S, SIM_START

    def pid(name: str) -> int:
        return int(ray.get(named(name).__ray_call__.remote(lambda _self: os.getpid()), timeout=60))

    before = {name: pid(name) for name in (PROCESSOR_NAME, EXECUTOR_NAME)}
    for name in before:  # both restart (max_restarts=-1)
        ray.kill(named(name), no_restart=False)
    # A call right after `ray.kill` can still reach the dying process: wait until both are
    # new processes, so the alert below meets restarted workers, never a half-dead one.
    deadline = time.monotonic() + 60
    for name, old in before.items():
        while True:
            try:
                if pid(name) != old:
                    break
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError):
                pass
            assert time.monotonic() < deadline, f"{name} did not restart"
            time.sleep(0.2)
    signal_id = post(api, direction="long", timestamp="2013-10-07T13:57:00Z", strategy="e1k")
    deadline = time.monotonic() + 90
    trail: Any = None
    while time.monotonic() < deadline:
        try:  # the sweeps every worker runs on its tick pick up what the kill dropped
            ray.get(named(PROCESSOR_NAME).tick.remote(SIM_START), timeout=RAY_TIMEOUT_S)
            ray.get(named(ORDER_CREATOR_NAME).tick.remote(SIM_START), timeout=RAY_TIMEOUT_S)
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError):
            pass
        trail = api.get(f"/signals/{signal_id}", headers=viewer(ray_session)).json()
        if trail["trades"]:
            break
        time.sleep(0.5)
    assert trail is not None and trail["trades"], trail
    assert len(trail["orders"]) == 1 and len(trail["trades"]) == 1
    assert trail["orders"][0]["status"] == "filled"
    # close it again so later tests start flat
    exit_id = post(
        api,
        direction="sell",
        timestamp="2013-10-07T13:56:00Z",
        strategy="e1k",
        market_position="flat",
        prev_market_position="long",
    )
    trail_when(api, ray_session, exit_id, lambda t: t["trades"])
