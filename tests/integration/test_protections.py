"""Protections in Engine 1's risk check, on real Ray + Serve + DuckDB with the session's
default settings (StoplossGuard, MaxDrawdown, LowProfitPairs: a symbol whose last 2+ trades
of the day lost in sum is locked for an hour).

Two BAC round trips on the simulated clock (fixed at 14:00Z, so every fill is at the same
quote) each lose the spread the paper fills pay; the third BAC entry is refused with
`protection_lock:LowProfitPairs` and the lock is a `protection_locked` event. A restarted
processor holds the lock from that event and does not record it again. BAC is this test's
alone, the lock is per symbol, and the test ends flat.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from engine.tokens import Role, issue_token
from tests.integration.conftest import RAY_TIMEOUT_S, SIM_START, WEBHOOK_SECRET, RaySession

SYMBOL = "BAC"
STRATEGY = "protections-itest"
LOCK_ENTITY = f"LowProfitPairs:{SYMBOL}"


def viewer(session: RaySession) -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, 't', Role.VIEWER, datetime.now(UTC))}"}


def post(api: httpx.Client, minute: int, **fields: Any) -> int:
    """An alert on a bar of its own (never a duplicate of another one here)."""
    bar = datetime(2013, 10, 7, 13, 40, tzinfo=UTC) + timedelta(minutes=minute)
    body = {
        "symbol": SYMBOL,
        "direction": "long",
        "timeframe": "1",
        "timestamp": bar.isoformat().replace("+00:00", "Z"),
        "strategy": STRATEGY,
        "secret": WEBHOOK_SECRET,
        **fields,
    }
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


def rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    import ray

    from actors.system import store_handle

    table = ray.get(store_handle().query.remote(sql, params), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def lock_events() -> list[dict[str, Any]]:
    return rows(
        "SELECT kind, event_time, payload FROM events WHERE stream = 'protections' "
        "AND entity_id = ? ORDER BY seq",
        [LOCK_ENTITY],
    )


def round_trip(api: httpx.Client, session: RaySession, minute: int) -> float:
    """Open and close one BAC position; its realised P&L."""
    entry = post(api, minute)
    opened = trail_when(
        api,
        session,
        entry,
        lambda t: t["positions"] or t["signal"]["status"] in ("rejected", "order_refused"),
    )
    assert opened["decision"]["decision"] == "approved", opened
    (position,) = opened["positions"]
    exit_id = post(
        api, minute + 1, direction="sell", market_position="flat", prev_market_position="long"
    )
    trail_when(api, session, exit_id, lambda t: t["trades"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (closed,) = rows(
            "SELECT status, realised_pnl, exit_reason FROM positions WHERE position_id = ?",
            [position["position_id"]],
        )
        if closed["status"] == "closed":
            assert closed["exit_reason"] == "exit_signal"
            return float(closed["realised_pnl"])
        time.sleep(0.2)
    raise AssertionError(f"position {position['position_id']} did not close")


def refused(api: httpx.Client, session: RaySession, minute: int) -> dict[str, Any]:
    signal_id = post(api, minute)
    trail = trail_when(api, session, signal_id, lambda t: t["decision"] is not None)
    assert trail["decision"]["decision"] == "rejected", trail
    assert trail["orders"] == [] and trail["positions"] == []
    return dict(trail["decision"])


def test_two_losing_round_trips_lock_the_symbol_and_a_restart_keeps_the_lock(
    api: httpx.Client, ray_session: RaySession
) -> None:
    import ray

    from actors.system import PROCESSOR_NAME, named

    assert lock_events() == []
    pnl = [round_trip(api, ray_session, 0), round_trip(api, ray_session, 2)]
    assert all(p < 0 for p in pnl), pnl  # each paid the spread on the same quote

    decision = refused(api, ray_session, 4)
    assert decision["reason"] == "protection_lock:LowProfitPairs"
    (locked,) = lock_events()
    assert locked["kind"] == "protection_locked" and locked["event_time"] == SIM_START
    payload = json.loads(locked["payload"])
    assert payload["symbol"] == SYMBOL and payload["protection"] == "LowProfitPairs"
    assert payload["until"] == (SIM_START + timedelta(minutes=60)).isoformat()

    # a restarted processor holds the lock from its event: refused again, recorded once
    ray.kill(named(PROCESSOR_NAME), no_restart=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            ray.get(named(PROCESSOR_NAME).tick.remote(SIM_START), timeout=RAY_TIMEOUT_S)
            break
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError):
            assert time.monotonic() < deadline, "the processor did not come back"
            time.sleep(0.5)
    assert refused(api, ray_session, 5)["reason"] == "protection_lock:LowProfitPairs"
    assert [e["kind"] for e in lock_events()] == ["protection_locked"]
    # the lock is BAC's alone, and nothing is left open
    global_locks = rows(
        "SELECT entity_id FROM events WHERE stream = 'protections' AND entity_id LIKE '%:*'", []
    )
    assert global_locks == []
    still_open = rows(
        "SELECT position_id FROM positions WHERE status = 'open' AND symbol = ?", [SYMBOL]
    )
    assert still_open == []
