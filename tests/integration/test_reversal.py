"""`opposite_entry=reverse` on real Ray + DuckDB: a short entry on a symbol held long first
closes the long (exit reason `reversal`) and then opens the short, never both at once.

The session's named workers reject opposite entries (the default); this test runs its own
SignalProcessor and OrderCreator configured to reverse, over the session's Store, market
data and order tracker, on SPY at 10:00 ET on 2013-10-07.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import RAY_TIMEOUT_S, SIM_START

SYMBOL = "SPY"
STRATEGY = "reversal-itest"


@pytest.fixture
def workers(api: Any) -> Iterator[tuple[Any, Any]]:
    import ray

    from actors.pipeline import OrderCreator, SignalProcessor
    from actors.system import MARKETDATA_NAME, TRACKER_NAME, named, store_handle
    from engine.adapters.replay import bundled_data_dir
    from engine.adapters.symbol_file import load_symbol_table
    from engine.orders import PlanConfig

    symbols = load_symbol_table(bundled_data_dir() / "symbol_properties.csv")
    opts: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 100}
    md, tracker, store = named(MARKETDATA_NAME), named(TRACKER_NAME), store_handle()
    plan = PlanConfig(opposite_entry="reverse")
    creator = ray.remote(OrderCreator).options(**opts).remote(store, md, tracker, symbols, plan)
    processor = (
        ray.remote(SignalProcessor)
        .options(**opts)
        .remote(store, md, creator, (), opposite_entry="reverse")
    )
    yield processor, creator
    for handle in (processor, creator):
        ray.kill(handle)


def rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    import ray

    from actors.system import store_handle

    table = ray.get(store_handle().query.remote(sql, params), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def signal(direction: str, minute: int, action: str = "entry") -> int:
    import ray

    from actors.system import store_handle
    from storage.writes import Insert

    bar = SIM_START - timedelta(minutes=minute)
    row = {
        "received_at": SIM_START,
        "symbol": SYMBOL,
        "direction": direction,
        "timeframe": "1m",
        "bar_time": bar,
        "action": action,
        "strategy": STRATEGY,
        "source": "webhook",
        "dedupe_key": f"{SYMBOL}|{direction}|1m|{bar.isoformat()}|{time.time_ns()}",
        "status": "received",
    }
    result = ray.get(
        store_handle().write.remote(Insert("signals", (row,), id_column="signal_id")),
        timeout=RAY_TIMEOUT_S,
    )
    return int(result.ids[0])


def positions() -> list[dict[str, Any]]:
    return rows(
        "SELECT p.position_id, p.side, p.status, p.exit_reason, o.option_right "
        "FROM positions p JOIN orders o ON p.entry_order_id = o.order_id "
        "WHERE p.symbol = ? AND p.strategy = ? ORDER BY p.position_id",
        [SYMBOL, STRATEGY],
    )


def settled(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_opposite_entry_closes_the_open_position_then_opens_its_own(
    workers: tuple[Any, Any],
) -> None:
    import ray

    processor, _creator = workers
    long_id = signal("long", 3)
    assert ray.get(processor.process.remote(long_id), timeout=RAY_TIMEOUT_S) == "approved"
    (held,) = settled("the long to open", lambda: [p for p in positions() if p["status"] == "open"])
    assert (held["side"], held["option_right"]) == ("long", "call")

    short_id = signal("short", 2)
    assert ray.get(processor.process.remote(short_id), timeout=RAY_TIMEOUT_S) == "approved"
    after = settled("the reversal", lambda: len(positions()) == 2 and positions())
    first, second = after
    assert (first["status"], first["exit_reason"]) == ("closed", "reversal")
    # short on the underlying: a long put
    assert (second["side"], second["option_right"], second["status"]) == ("long", "put", "open")
    orders = rows(
        "SELECT intent, reason, status FROM orders WHERE signal_id = ? ORDER BY order_id",
        [short_id],
    )
    assert orders == [
        {"intent": "exit", "reason": "reversal", "status": "filled"},
        {"intent": "entry", "reason": None, "status": "filled"},
    ]
    (decision,) = rows("SELECT reason FROM refactored_signals WHERE signal_id = ?", [short_id])
    assert decision["reason"] == "reverse"
    # the exit's fill came before the entry's: never two opposite positions open at once
    fills = rows(
        "SELECT o.intent, t.filled_at, t.trade_id FROM trades t JOIN orders o "
        "ON t.order_id = o.order_id WHERE o.signal_id = ? ORDER BY t.trade_id",
        [short_id],
    )
    assert [f["intent"] for f in fills] == ["exit", "entry"]

    # flat again for later tests
    exit_id = signal("short", 1, action="exit")
    assert ray.get(processor.process.remote(exit_id), timeout=RAY_TIMEOUT_S) == "approved"
    settled("flat", lambda: all(p["status"] == "closed" for p in positions()))
    assert datetime(2013, 10, 7, tzinfo=UTC) < SIM_START
