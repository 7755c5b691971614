"""The OrderTracker trading at a loopback Alpaca on real Ray + DuckDB: the Alpaca broker
actor and the UserStream actor come from `actors.system` (`start_broker`,
`start_user_stream`) with settings pointed at the fake's REST and websocket URLs.

An order is submitted, then filled through the stream; a partial fill then the rest; a
rejection at submit and one from the stream; a fill during a disconnect, recovered by the
reconciliation that follows the reconnect; a submit whose answer times out, resolved by a
look-up with exactly one order at the broker.

Each test runs its own fake venue, live clock, broker, tracker (engine `itest-alpaca`, so
its positions never count against other engines) and stream over the session's Store.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.settings import load_settings
from tests.contract.alpaca_trading_fake import AlpacaTradingLoopback, FakeAlpacaTrading, Script
from tests.integration.conftest import RAY_TIMEOUT_S, RaySession

ENGINE = "itest-alpaca"
KEY_ID = "PKINTEGRATIONKEY0001"
SECRET = "integration-alpaca-s3cr3t-0123456789abcdef"
BROKER_TIMEOUT_S = 2.0  # the adapter's HTTP timeout in these tests
_RIGS = itertools.count(1)


@dataclass
class Rig:
    fake: FakeAlpacaTrading
    tracker: Any
    stream: Any

    def status(self) -> dict[str, Any]:
        import ray

        status: dict[str, Any] = ray.get(self.stream.status.remote(), timeout=RAY_TIMEOUT_S)
        return status

    def submit(self, order_id: int) -> str:
        import ray

        return str(ray.get(self.tracker.submit.remote(order_id), timeout=RAY_TIMEOUT_S))


@pytest.fixture
def rig(api: Any, ray_session: RaySession) -> Iterator[Rig]:
    import ray

    from actors.clock import ClockActor, RemoteClock
    from actors.system import start_broker, start_user_stream, store_handle
    from actors.tracker import OrderTracker

    fake = FakeAlpacaTrading(KEY_ID, SECRET, frames="alternate")
    with AlpacaTradingLoopback(fake) as loopback:
        settings = load_settings(
            {
                "TANDEM_BROKER": "alpaca",
                "TANDEM_ALPACA_KEY_ID": KEY_ID,
                "TANDEM_ALPACA_SECRET_KEY": SECRET,
                "TANDEM_ALPACA_TRADING_URL": loopback.url,
                "TANDEM_ALPACA_STREAM_URL": loopback.stream_url,
            }
        )
        n = next(_RIGS)
        opts: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 100}
        clock = ray.remote(ClockActor).options(**opts).remote(None)  # the live clock
        handle, broker = start_broker(
            settings, clock, None, None, name=f"itest-alpaca-broker-{n}", timeout_s=BROKER_TIMEOUT_S
        )
        tracker = (
            ray.remote(OrderTracker)
            .options(**opts)
            .remote(store_handle(), broker, RemoteClock(clock), ENGINE)
        )
        stream = start_user_stream(
            settings, tracker, clock, name=f"itest-user-stream-{n}", backoff_base_s=0.2
        )
        rig = Rig(fake, tracker, stream)
        wait_for("the stream to listen and reconcile", lambda: rig.status()["reconciles"] >= 1)
        yield rig
        ray.get(stream.stop.remote(), timeout=RAY_TIMEOUT_S)
        for actor in (stream, tracker, handle, clock):
            ray.kill(actor)
    _close_test_positions()


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
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def share_order(n: int, quantity: int) -> Any:
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
        quantity=quantity,
        multiplier=1,
        reference_price=590.0,
        created_at=datetime.now(UTC),
    )


def insert(order: Any) -> int:
    import ray

    from actors.pipeline import order_row
    from actors.system import store_handle
    from storage.writes import Insert

    result = ray.get(
        store_handle().write.remote(
            Insert("orders", (order_row(order, None, None),), id_column="order_id")
        ),
        timeout=RAY_TIMEOUT_S,
    )
    return int(result.ids[0])


def order_row_now(order_id: int) -> dict[str, Any]:
    return rows("SELECT status, reason FROM orders WHERE order_id = ?", [order_id])[0]


def wait_for_state(order_id: int, state: str) -> None:
    wait_for(f"order {order_id} to be {state}", lambda: order_row_now(order_id)["status"] == state)


def trades_of(order_id: int) -> list[dict[str, Any]]:
    return rows(
        "SELECT quantity, price, fill_id FROM trades WHERE order_id = ? ORDER BY trade_id",
        [order_id],
    )


def position_of(order_id: int) -> dict[str, Any]:
    (position,) = rows(
        "SELECT quantity, avg_price, status, engine FROM positions WHERE entry_order_id = ?",
        [order_id],
    )
    return position


def test_an_order_is_submitted_then_filled_through_the_stream(rig: Rig) -> None:
    order = share_order(1, 3)
    order_id = insert(order)
    assert rig.submit(order_id) == "submitted"
    (post,) = rig.fake.calls_to("POST", "/v2/orders")
    assert post.body["client_order_id"] == order.client_order_id
    assert post.headers["apca-api-key-id"] == KEY_ID

    execution = rig.fake.fill(order.client_order_id, 3, 590.25)
    wait_for_state(order_id, "filled")
    assert trades_of(order_id) == [{"quantity": 3.0, "price": 590.25, "fill_id": execution}]
    assert position_of(order_id) == {
        "quantity": 3.0,
        "avg_price": 590.25,
        "status": "open",
        "engine": ENGINE,
    }
    kinds = [
        e["kind"]
        for e in rows(
            "SELECT kind FROM events WHERE entity_id = ? ORDER BY seq", [order.idempotency_key]
        )
    ]
    assert kinds == ["order_submitted", "order_fill", "order_filled"]
    assert {"binary", "text"} <= set(rig.fake.frame_kinds)


def test_a_partial_fill_then_the_rest(rig: Rig) -> None:
    order = share_order(2, 5)
    order_id = insert(order)
    assert rig.submit(order_id) == "submitted"
    first = rig.fake.fill(order.client_order_id, 2, 590.0)
    wait_for_state(order_id, "partially_filled")
    assert position_of(order_id)["quantity"] == 2.0
    second = rig.fake.fill(order.client_order_id, 3, 591.0)
    wait_for_state(order_id, "filled")
    assert [t["fill_id"] for t in trades_of(order_id)] == [first, second]
    position = position_of(order_id)
    assert position["quantity"] == 5.0
    assert position["avg_price"] == pytest.approx((2 * 590.0 + 3 * 591.0) / 5)


def test_a_rejection_at_submit_and_one_from_the_stream(rig: Rig) -> None:
    rig.fake.cash = 10.0
    refused = share_order(3, 5)
    refused_id = insert(refused)
    assert rig.submit(refused_id) == "rejected"
    assert order_row_now(refused_id)["reason"] == "insufficient_buying_power"
    assert rig.fake.orders_with(refused.client_order_id) == []

    rig.fake.cash = 100_000.0
    later = share_order(4, 5)
    later_id = insert(later)
    assert rig.submit(later_id) == "submitted"
    rig.fake.reject_at_venue(later.client_order_id)
    wait_for_state(later_id, "rejected")
    assert order_row_now(later_id)["reason"] == "alpaca:rejected"
    assert trades_of(later_id) == []


def test_a_fill_during_a_disconnect_is_recovered_by_reconciliation(rig: Rig) -> None:
    order = share_order(5, 4)
    order_id = insert(order)
    assert rig.submit(order_id) == "submitted"
    before = rig.status()

    rig.fake.pause_stream()
    wait_for("the stream to drop", lambda: not rig.status()["connected"])
    assert rig.fake.listening() == 0
    rig.fake.fill(order.client_order_id, 4, 589.5)  # nobody hears it
    time.sleep(0.5)
    assert order_row_now(order_id)["status"] == "submitted"

    rig.fake.resume_stream()
    wait_for_state(order_id, "filled")
    (venue,) = rig.fake.orders_with(order.client_order_id)
    # found by looking the order up: only Alpaca's cumulative figures, no execution id
    assert trades_of(order_id) == [
        {"quantity": 4.0, "price": 589.5, "fill_id": f"{venue['id']}:cum:4"}
    ]
    after = rig.status()
    assert after["connections"] == before["connections"] + 1
    assert after["reconciles"] >= before["reconciles"] + 1
    differences = rows(
        "SELECT payload FROM events WHERE kind = 'reconciliation_difference' AND entity_id = ?",
        [order.client_order_id],
    )
    assert any("not_open_at_broker" in str(d["payload"]) for d in differences)


def test_an_ambiguous_submit_is_resolved_by_lookup_with_one_order_at_the_broker(
    rig: Rig,
) -> None:
    order = share_order(6, 2)
    order_id = insert(order)
    # Alpaca takes the order but answers after the adapter has given up waiting.
    rig.fake.script(Script(process=True, delay_s=BROKER_TIMEOUT_S * 2, method="POST"))
    assert rig.submit(order_id) == "submitted"
    assert len(rig.fake.orders_with(order.client_order_id)) == 1
    assert len(rig.fake.calls_to("POST", "/v2/orders")) == 1
    lookups = rig.fake.calls_to("GET", "/v2/orders:by_client_order_id")
    assert [c.param("client_order_id") for c in lookups] == [order.client_order_id]

    execution = rig.fake.fill(order.client_order_id, 2, 590.75)
    wait_for_state(order_id, "filled")
    assert trades_of(order_id) == [{"quantity": 2.0, "price": 590.75, "fill_id": execution}]


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
                    {"status": "closed", "closed_at": datetime.now(UTC)},
                )
            ),
            timeout=RAY_TIMEOUT_S,
        )
