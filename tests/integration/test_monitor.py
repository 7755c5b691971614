"""PositionMonitor on real Ray + Serve + DuckDB: an alert opens an AIG option position, a
tick marks it, and a tick 4 minutes before the close exits it by the `session_end` rule
through the PaperExecutor, exactly once. Ticks carry their own `now` within 2013-10-07's
session; the market-data replay answers as of that `now`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RAY_TIMEOUT_S, WEBHOOK_SECRET

SYMBOL = "AIG"
STRATEGY = "monitor-itest"
MARKS_AT = datetime(2013, 10, 7, 14, 5, tzinfo=UTC)  # 10:05 ET: no rule fires
CLOSE = datetime(2013, 10, 7, 20, 0, tzinfo=UTC)  # 16:00 ET
SESSION_END_AT = CLOSE - timedelta(minutes=4)  # the rule closes 5 minutes before


@pytest.fixture
def monitor(api: httpx.Client) -> Iterator[Any]:
    """A PositionMonitor of this test's own (not the named one), on the session's actors."""
    import ray

    from actors.monitor import PositionMonitor
    from actors.system import MARKETDATA_NAME, TRACKER_NAME, named, store_handle

    handle = (
        ray.remote(PositionMonitor)
        .options(num_cpus=0)
        .remote(store_handle(), named(MARKETDATA_NAME), named(TRACKER_NAME))
    )
    yield handle
    ray.kill(handle)


def rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    import ray

    from actors.system import store_handle

    table = ray.get(store_handle().query.remote(sql, params), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def tick(monitor: Any, *at: datetime) -> list[dict[str, int]]:
    """Tick the monitor once per `at`, all at the same time, and wait for every answer."""
    import ray

    return list(ray.get([monitor.tick.remote(t) for t in at], timeout=RAY_TIMEOUT_S))


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def open_position(api: httpx.Client) -> dict[str, Any]:
    body = {
        "symbol": SYMBOL,
        "direction": "long",
        "timeframe": "1",
        "timestamp": "2013-10-07T13:58:00Z",
        "strategy": STRATEGY,
        "secret": WEBHOOK_SECRET,
    }
    response = api.post("/webhook", json=body)
    assert response.status_code == 201, response.text
    return position_of(int(response.json()["signal_id"]))


def position_of(signal_id: int) -> dict[str, Any]:
    """The position the entry of `signal_id` opened, once it has."""
    found = wait_for(
        f"the position of signal {signal_id}",
        lambda: rows(
            "SELECT p.* FROM positions p JOIN orders o ON p.entry_order_id = o.order_id "
            "WHERE o.signal_id = ?",
            [signal_id],
        ),
    )
    (position,) = found
    return dict(position)


def exit_orders(position_id: int) -> list[dict[str, Any]]:
    return rows("SELECT * FROM orders WHERE position_id = ? AND intent = 'exit'", [position_id])


def position_row(position_id: int) -> dict[str, Any]:
    (row,) = rows("SELECT * FROM positions WHERE position_id = ?", [position_id])
    return row


def test_a_tick_marks_the_position_and_the_session_end_rule_closes_it_once(
    api: httpx.Client, monitor: Any
) -> None:
    opened = open_position(api)
    pid = int(opened["position_id"])
    assert opened["status"] == "open" and opened["strategy"] == STRATEGY

    (summary,) = tick(monitor, MARKS_AT)
    assert summary["marked"] >= 1
    marked = position_row(pid)
    assert marked["status"] == "open" and marked["marked_at"] == MARKS_AT
    unrealised = (marked["mark"] - marked["avg_price"]) * marked["quantity"] * 100
    assert marked["unrealised_pnl"] is not None
    assert abs(marked["unrealised_pnl"] - unrealised) < 1e-6
    assert exit_orders(pid) == []  # no rule fires at 10:05 ET

    tick(monitor, SESSION_END_AT, SESSION_END_AT)  # two ticks decide the same exit at once
    closed = wait_for("the exit fill", lambda: position_row(pid)["status"] == "closed")
    assert closed
    tick(monitor, SESSION_END_AT + timedelta(minutes=1))  # and one after it closed

    (order,) = exit_orders(pid)
    assert order["reason"] == "session_end" and order["signal_id"] is None
    assert order["status"] == "filled" and order["side"] == "sell"
    assert order["quantity"] == opened["quantity"]
    after = position_row(pid)
    assert after["exit_reason"] == "session_end" and after["exit_order_id"] == order["order_id"]
    (entry,) = rows("SELECT * FROM trades WHERE order_id = ?", [opened["entry_order_id"]])
    (exit_trade,) = rows("SELECT * FROM trades WHERE order_id = ?", [order["order_id"]])
    expected = (exit_trade["price"] - entry["price"]) * entry["quantity"] * 100
    expected -= entry["fees"] + exit_trade["fees"]
    assert abs(after["realised_pnl"] - expected) < 1e-6
    assert after["unrealised_pnl"] == 0.0 and after["mark"] == exit_trade["price"]
