"""The OrderTracker on real Ray + DuckDB with the paper broker actor: an order lost with a
killed broker is looked up three times, marked lost, and still takes a late fill; after a
crash between sending and recording, start-up reconciliation finds the fill.

Each test runs its own clock, paper broker and tracker (engine `itest-tracker`, so its
positions never count against the live engine's risk limits) over the session's Store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import RAY_TIMEOUT_S, SIM_START, RaySession

ENGINE = "itest-tracker"


@dataclass
class Rig:
    clock: Any
    broker: Any
    tracker: Any


@pytest.fixture
def rig(api: Any, ray_session: RaySession) -> Iterator[Rig]:
    import ray

    from actors.clock import ClockActor, RemoteClock
    from actors.executor import PaperExecutor, RemoteBroker
    from actors.system import MARKETDATA_NAME, named, store_handle
    from actors.tracker import OrderTracker
    from engine.adapters.replay import bundled_data_dir
    from engine.adapters.symbol_file import load_symbol_table

    symbols = load_symbol_table(bundled_data_dir() / "symbol_properties.csv")
    opts: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 100}
    clock = ray.remote(ClockActor).options(**opts).remote(SIM_START)
    broker = (
        ray.remote(PaperExecutor)
        .options(max_restarts=-1, **opts)
        .remote(named(MARKETDATA_NAME), RemoteClock(clock), symbols, 1)
    )
    tracker = (
        ray.remote(OrderTracker)
        .options(**opts)
        .remote(store_handle(), RemoteBroker(broker), RemoteClock(clock), ENGINE)
    )
    yield Rig(clock, broker, tracker)
    for handle in (tracker, broker, clock):
        ray.kill(handle)


def rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    import ray

    from actors.system import store_handle

    table = ray.get(store_handle().query.remote(sql, params), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def wait_for(what: str, probe: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def share_order(n: int, created_at: datetime) -> Any:
    from engine.orders import PlannedOrder, client_order_id

    key = f"{ENGINE}/{n}/{time.time_ns()}"
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="entry",
        signal_id=None,
        engine=ENGINE,
        symbol="SPY",
        instrument="SPY",
        asset_class="equity",
        right=None,
        strike=None,
        expiry=None,
        side="buy",
        position_side="long",
        quantity=3,
        multiplier=1,
        reference_price=None,
        created_at=created_at,
    )


def insert(order: Any, status: str = "pending_execution") -> int:
    import ray

    from actors.pipeline import order_row
    from actors.system import store_handle
    from storage.writes import Insert

    row = {**order_row(order, None, None), "status": status}
    result = ray.get(
        store_handle().write.remote(Insert("orders", (row,), id_column="order_id")),
        timeout=RAY_TIMEOUT_S,
    )
    return int(result.ids[0])


def order_status(order_id: int) -> str:
    return str(rows("SELECT status FROM orders WHERE order_id = ?", [order_id])[0]["status"])


def test_an_order_lost_with_its_broker_is_looked_up_then_lost_and_still_takes_a_late_fill(
    rig: Rig,
) -> None:
    import ray

    from engine.broker import BrokerFill, BrokerOrder

    # shares fill at the next bar's open once it has closed: the broker parks on the clock
    order = share_order(1, SIM_START + timedelta(seconds=20))
    order_id = insert(order)
    outcome = rig.tracker.submit.remote(order_id)
    wait_for("the broker to wait for its bar", lambda: ray.get(rig.clock.next_deadline.remote()))
    assert order_status(order_id) == "submitted"  # registered before it was sent
    ray.kill(rig.broker, no_restart=False)  # the venue loses the order with its process

    # look-ups wait 1 s, then 2 s on the run's clock between tries: move time to each wake-up
    deadline = time.monotonic() + 60
    while not ray.wait([outcome], timeout=0.05)[0]:
        assert time.monotonic() < deadline, "the tracker did not give the order up"
        wake = ray.get(rig.clock.next_deadline.remote(), timeout=RAY_TIMEOUT_S)
        if wake is not None:
            ray.get(rig.clock.advance_to.remote(wake), timeout=RAY_TIMEOUT_S)
    assert ray.get(outcome, timeout=RAY_TIMEOUT_S) == "lost"
    events = rows(
        "SELECT kind FROM events WHERE entity_id = ? ORDER BY seq", [order.idempotency_key]
    )
    assert [e["kind"] for e in events] == ["order_submitted", "order_lost"]

    # the broker's answer arrives late: the lost order takes it, once
    at = SIM_START + timedelta(minutes=1)
    fill = BrokerFill(order.client_order_id, "late-1", 3, 167.5, 0.0, at)
    late = BrokerOrder(
        order.client_order_id, "b-late", "SPY", "buy", 3, "filled", at, 3, 167.5, None, (fill,)
    )
    assert ray.get(rig.tracker.on_update.remote(late), timeout=RAY_TIMEOUT_S) == "filled"
    assert ray.get(rig.tracker.on_update.remote(late), timeout=RAY_TIMEOUT_S) == "filled"
    trades = rows("SELECT quantity, price FROM trades WHERE order_id = ?", [order_id])
    assert trades == [{"quantity": 3.0, "price": 167.5}]
    (position,) = rows(
        "SELECT quantity, avg_price, status, engine FROM positions WHERE entry_order_id = ?",
        [order_id],
    )
    assert position == {"quantity": 3.0, "avg_price": 167.5, "status": "open", "engine": ENGINE}
    _close_test_positions()


def test_start_up_reconciliation_records_a_fill_the_tracker_never_heard_of(rig: Rig) -> None:
    import ray

    # an option order the broker filled while the tracker was down (sent, not recorded)
    at = SIM_START
    chain = ray.get(
        __import__("actors.system", fromlist=["named"])
        .named("tandem-marketdata")
        .option_chain.remote("SPY", None, at),
        timeout=RAY_TIMEOUT_S,
    )
    contract = chain[0].contract
    order = replace(
        share_order(2, at),
        instrument=contract.occ_symbol,
        asset_class="option",
        right=contract.right,
        strike=contract.strike,
        expiry=contract.expiry,
        multiplier=100,
        quantity=1,
    )
    order_id = insert(order, status="submitted")
    answer = ray.get(rig.broker.submit.remote(order), timeout=RAY_TIMEOUT_S)
    assert answer.status == "filled"
    # and one registered but never sent (the crash came first): the broker does not know it
    never_sent = insert(share_order(3, at), status="submitted")

    summaries = [ray.get(rig.tracker.reconcile.remote(), timeout=RAY_TIMEOUT_S) for _ in range(3)]
    assert summaries[0]["looked_up"] == 2
    assert order_status(order_id) == "filled"
    (trade,) = rows("SELECT price, fill_id FROM trades WHERE order_id = ?", [order_id])
    assert trade["price"] == answer.filled_avg_price
    assert order_status(never_sent) == "lost"  # after three passes without finding it
    differences = rows(
        "SELECT entity_id, payload FROM events WHERE kind = 'reconciliation_difference' "
        "AND entity_id IN (?, ?)",
        [order.client_order_id, share_order(3, at).client_order_id],
    )
    assert any(d["entity_id"] == order.client_order_id for d in differences)
    _close_test_positions()


def _close_test_positions() -> None:
    import ray

    from actors.system import store_handle
    from storage.writes import Update

    for p in rows(
        "SELECT position_id FROM positions WHERE engine = ? AND status = 'open'", [ENGINE]
    ):
        ray.get(
            store_handle().write.remote(
                Update(
                    "positions",
                    {"position_id": p["position_id"]},
                    {"status": "closed", "closed_at": datetime(2013, 10, 7, 15, tzinfo=UTC)},
                )
            ),
            timeout=RAY_TIMEOUT_S,
        )
