"""`AlpacaBroker` and the trade_updates stream against a loopback Alpaca Trading API.

The only fake is the venue (`FakeAlpacaTrading`): HTTP and the websocket are real. Back-off
waits run on a `SimClock` moved by `drive`, so retries take no real time; the offsets of
the venue's calls on that clock show the waits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pytest
from websockets.exceptions import ConnectionClosed

from actors.user_stream import TradeUpdateFeed
from engine.adapters.alpaca_stream import Other, TradeUpdate, parse_frame
from engine.adapters.alpaca_trading import (
    ALPACA_LIVE_URL,
    ALPACA_PAPER_STREAM_URL,
    ALPACA_PAPER_URL,
    AlpacaBroker,
    alpaca_access,
    alpaca_endpoints,
    order_from_json,
)
from engine.broker import Ambiguous, BrokerOrder
from engine.clock import SimClock
from engine.errors import Fatal, Rejected, Retryable
from engine.marketdata import Right
from engine.orders import PlannedOrder, client_order_id
from engine.settings import load_settings
from tests.conftest import free_port
from tests.contract.alpaca_trading_fake import (
    AlpacaTradingLoopback,
    FakeAlpacaTrading,
    Script,
    serving,
)
from tests.contract.sim_driver import drive
from tests.contract.vendor_servers import Reply

T = TypeVar("T")
KEY_ID = "PKTRADINGKEYID012345"
SECRET = "trading-s3cr3t-0123456789abcdefghijklmnop"
T0 = datetime(2024, 12, 31, 16, 51, 21, tzinfo=UTC)
EXPIRY = date(2025, 1, 17)
OCC_PADDED = "SPY   250117C00590000"
OCC_ALPACA = "SPY250117C00590000"


def shares(n: int = 1, quantity: int = 5, side: str = "buy") -> PlannedOrder:
    key = f"contract/alpaca/{n}"
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="entry",
        signal_id=n,
        engine="live",
        symbol="SPY",
        instrument="SPY",
        asset_class="equity",
        right=None,
        strike=None,
        expiry=None,
        side=side,  # type: ignore[arg-type]
        position_side="long" if side == "buy" else "short",
        quantity=quantity,
        multiplier=1,
        reference_price=590.0,
        created_at=T0,
    )


def calls_option(n: int = 2, limit: float | None = 2.5) -> PlannedOrder:
    return replace(
        shares(n, 2),
        instrument=OCC_PADDED,
        asset_class="option",
        right=Right.CALL,
        strike=590.0,
        expiry=EXPIRY,
        multiplier=100,
        limit_price=limit,
    )


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def fake(clock: SimClock) -> FakeAlpacaTrading:
    return FakeAlpacaTrading(KEY_ID, SECRET, now=clock.now)


@pytest.fixture
def server(fake: FakeAlpacaTrading) -> Iterator[AlpacaTradingLoopback]:
    yield from serving(fake)


def _run(
    server: AlpacaTradingLoopback,
    clock: SimClock,
    use: Callable[[AlpacaBroker], Awaitable[T]],
    **options: Any,
) -> T:
    """Build the adapter inside the event loop, run `use` on the sim clock, close it."""

    async def now() -> datetime:
        return clock.now()

    async def scenario() -> T:
        settings: dict[str, Any] = {
            "key_id": KEY_ID,
            "secret_key": SECRET,
            "sleep": clock.sleep,
            "now": now,
            "base_url": server.url,
        } | options
        async with AlpacaBroker(**settings) as broker:
            return await drive(clock, use(broker))

    return asyncio.run(scenario())


def _failure(
    server: AlpacaTradingLoopback,
    clock: SimClock,
    use: Callable[[AlpacaBroker], Awaitable[Any]],
    **options: Any,
) -> BaseException:
    try:
        _run(server, clock, use, **options)
    except Exception as exc:  # the error under test
        return exc
    raise AssertionError("the call succeeded")


def _offsets(calls: list[Any]) -> list[float]:
    return [(c.at - T0).total_seconds() for c in calls]


# --- orders out ---------------------------------------------------------------------------


def test_a_market_order_goes_out_under_our_client_order_id(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    order = shares()
    answer = _run(server, clock, lambda b: b.submit(order))
    (call,) = fake.calls
    assert (call.method, call.path) == ("POST", "/v2/orders")
    assert call.body == {
        "symbol": "SPY",
        "qty": "5",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": order.client_order_id,
    }
    assert call.headers["apca-api-key-id"] == KEY_ID
    assert call.headers["apca-api-secret-key"] == SECRET
    (venue,) = fake.orders_with(order.client_order_id)
    assert answer == BrokerOrder(
        client_order_id=order.client_order_id,
        broker_order_id=venue["id"],
        instrument="SPY",
        side="buy",
        quantity=5,
        status="accepted",
        updated_at=T0,  # Alpaca's nanoseconds, read to the microsecond
    )


def test_an_option_limit_order_uses_the_occ_symbol_without_spaces(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    answer = _run(server, clock, lambda b: b.submit(calls_option(limit=2.5)))
    body = fake.calls[0].body
    assert (body["symbol"], body["type"], body["limit_price"], body["qty"]) == (
        OCC_ALPACA,
        "limit",
        "2.50",
        "2",
    )
    assert answer.instrument == OCC_PADDED  # back as our instrument
    assert fake.orders_with(answer.client_order_id)[0]["asset_class"] == "us_option"


def test_a_sub_dollar_limit_keeps_four_decimals(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    _run(server, clock, lambda b: b.submit(calls_option(limit=0.4567)))
    assert fake.calls[0].body["limit_price"] == "0.4567"


def test_lookup_by_client_order_id_and_an_unknown_one_is_none(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    order = shares()

    async def use(b: AlpacaBroker) -> tuple[BrokerOrder, BrokerOrder | None, BrokerOrder | None]:
        sent = await b.submit(order)
        fake.fill(order.client_order_id, 5, 590.12)
        return sent, await b.lookup(order.client_order_id), await b.lookup("tdm-unknown")

    sent, found, unknown = _run(server, clock, use)
    assert unknown is None
    assert found is not None
    assert (found.broker_order_id, found.status) == (sent.broker_order_id, "filled")
    assert (found.filled_quantity, found.filled_avg_price, found.fills) == (5, 590.12, ())
    lookups = fake.calls_to("GET", "/v2/orders:by_client_order_id")
    assert [c.param("client_order_id") for c in lookups] == [order.client_order_id, "tdm-unknown"]


def test_open_orders_positions_and_account(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    option, stock, short = calls_option(limit=2.5), shares(3), shares(4, 10, side="sell")

    async def use(b: AlpacaBroker) -> Any:
        for order in (option, stock, short):
            await b.submit(order)
        fake.fill(option.client_order_id, 2, 2.5)
        fake.fill(stock.client_order_id, 2, 590.0)  # partly: still open
        fake.fill(short.client_order_id, 10, 591.0)
        return await b.open_orders(), await b.positions(), await b.account()

    open_orders, positions, account = _run(server, clock, use)
    assert [(o.client_order_id, o.status, o.filled_quantity) for o in open_orders] == [
        (stock.client_order_id, "partially_filled", 2)
    ]
    assert {(p.instrument, p.quantity, p.avg_price) for p in positions} == {
        (OCC_PADDED, 2, 2.5),
        ("SPY", -8, 591.0),  # 2 bought, 10 sold short
    }
    assert account.buying_power == pytest.approx(100_000 - 500 - 1180 + 5910)
    assert account.equity == pytest.approx(account.cash + 2 * 2.5 * 100 - 8 * 591.0)
    assert account.status == "ACTIVE"


def test_open_orders_are_read_page_by_page(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    orders = [shares(10 + i, 1) for i in range(5)]

    async def use(b: AlpacaBroker) -> Any:
        for i, order in enumerate(orders):
            clock.advance_to(T0.replace(second=30 + i))  # one submitted_at each
            await b.submit(order)
        return await b.open_orders()

    found = _run(server, clock, use, page_size=2)
    assert [o.client_order_id for o in found] == [o.client_order_id for o in orders]
    pages = fake.calls_to("GET", "/v2/orders")
    assert [c.param("limit") for c in pages] == ["2", "2", "2"]
    assert pages[0].param("after") is None and pages[1].param("after") is not None
    assert {c.param("status") for c in pages} == {"open"}


def test_cancel_an_open_order_and_leave_a_filled_one_alone(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    resting, done = calls_option(5), shares(6)

    async def use(b: AlpacaBroker) -> Any:
        await b.submit(resting)
        await b.submit(done)
        fake.fill(done.client_order_id, 5, 590.0)
        return (
            await b.cancel(resting.client_order_id),
            await b.cancel(done.client_order_id),
            await b.cancel("tdm-nobody"),
        )

    cancelled, filled, unknown = _run(server, clock, use)
    assert (cancelled.status, cancelled.reason) == ("canceled", "alpaca:canceled")
    assert filled.status == "filled"
    assert unknown is None
    deletes = [c for c in fake.calls if c.method == "DELETE"]
    assert [c.path for c in deletes] == [f"/v2/orders/{cancelled.broker_order_id}"]


# --- refusals ------------------------------------------------------------------------------


def test_insufficient_buying_power_is_rejected_once_with_alpacas_detail(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    fake.cash = 100.0
    err = _failure(server, clock, lambda b: b.submit(shares()))
    assert isinstance(err, Rejected) and not isinstance(err, Retryable)
    assert err.code == "insufficient_buying_power"
    assert err.detail == {"status": 403, "code": 40310000, "message": "insufficient buying power"}
    assert len(fake.calls) == 1
    assert fake.orders == {}


def test_not_tradable_and_market_closed_are_rejected_with_their_codes(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    fake.untradable.add("SPY")
    err = _failure(server, clock, lambda b: b.submit(shares()))
    assert isinstance(err, Rejected) and err.code == "not_tradable"
    fake.market_open = False
    err = _failure(server, clock, lambda b: b.submit(calls_option(limit=None)))
    assert isinstance(err, Rejected) and err.code == "market_closed"
    assert err.detail["status"] == 422 and err.detail["code"] == 42210000
    assert len(fake.calls) == 2


def test_wrong_keys_are_unauthorized_and_never_leak(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    wrong = "wrong-secret-abcdefghijklmnopqrstuvwxyz"
    err = _failure(server, clock, lambda b: b.submit(shares()), secret_key=wrong)
    assert isinstance(err, Rejected) and err.code == "broker_unauthorized"
    assert err.detail["status"] == 403
    err = _failure(server, clock, lambda b: b.positions(), key_id="PKNOBODY")
    assert isinstance(err, Rejected) and err.code == "broker_unauthorized"
    assert err.detail["status"] == 401
    for text in (str(err), repr(err), repr(AlpacaBroker(key_id=KEY_ID, secret_key=SECRET,
                                                        sleep=clock.sleep))):  # fmt: skip
        assert SECRET not in text and KEY_ID not in text and wrong not in text
    assert fake.orders == {}


# --- retries and ambiguity ---------------------------------------------------------------


def test_429_then_503_then_success_waits_for_the_reset_then_backs_off(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    reset = str(int(T0.timestamp()) + 7)
    fake.script(
        Script(Reply(429, {"code": 42910000, "message": "rate limit exceeded"},
                     {"X-RateLimit-Limit": "200", "X-RateLimit-Reset": reset})),
        Script(Reply(503, {"message": "service unavailable"})),
    )  # fmt: skip
    answer = _run(server, clock, lambda b: b.submit(shares()))
    assert answer.status == "accepted"
    # 429: wait for X-RateLimit-Reset (7 s > the 1 s back-off); 503: back off 2 s.
    assert _offsets(fake.calls) == [0.0, 7.0, 9.0]
    assert len(fake.orders) == 1


def test_rate_limited_every_time_is_retryable_not_ambiguous(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    fake.script(*[Script(Reply(429, {"message": "rate limit exceeded"}))] * 4)
    err = _failure(server, clock, lambda b: b.submit(shares()))
    assert isinstance(err, Retryable) and not isinstance(err, Ambiguous)
    assert _offsets(fake.calls) == [0.0, 1.0, 3.0, 7.0]


def test_a_submit_that_keeps_failing_5xx_is_ambiguous_and_a_read_is_retryable(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    fake.script(*[Script(Reply(502, {"message": "bad gateway"}))] * 4)
    err = _failure(server, clock, lambda b: b.submit(shares()))
    assert isinstance(err, Ambiguous) and "502" in str(err)
    fake.script(*[Script(Reply(500, {"message": "internal server error"}))] * 2)
    err = _failure(server, clock, lambda b: b.positions(), attempts=2)
    assert isinstance(err, Retryable) and not isinstance(err, Ambiguous)


def test_a_retried_submit_that_alpaca_already_took_returns_that_order(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    # Alpaca takes the order, then its answer fails; the retry is told the id is taken.
    order = shares()
    fake.script(Script(Reply(500, {"message": "internal server error"}), process=True))
    answer = _run(server, clock, lambda b: b.submit(order))
    (venue,) = fake.orders_with(order.client_order_id)
    assert answer.broker_order_id == venue["id"]
    assert [(c.method, c.path) for c in fake.calls] == [
        ("POST", "/v2/orders"),
        ("POST", "/v2/orders"),
        ("GET", "/v2/orders:by_client_order_id"),
    ]


def test_a_submit_timeout_is_ambiguous_and_a_lookup_finds_exactly_one_order(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    order = shares()
    fake.script(Script(process=True, delay_s=0.5, method="POST"))

    async def use(b: AlpacaBroker) -> tuple[BaseException, BrokerOrder | None]:
        try:
            await b.submit(order)
        except Ambiguous as exc:
            return exc, await b.lookup(order.client_order_id)
        raise AssertionError("the submit was answered")

    err, found = _run(server, clock, use, timeout_s=0.1)
    assert "ReadTimeout" in str(err)
    assert found is not None and found.status == "new"
    assert len(fake.orders_with(order.client_order_id)) == 1
    assert len(fake.calls_to("POST", "/v2/orders")) == 1  # never re-sent blindly


def test_connection_refused_is_retried_then_retryable_not_ambiguous(clock: SimClock) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there

    async def scenario() -> BaseException:
        async with AlpacaBroker(key_id=KEY_ID, secret_key=SECRET, sleep=clock.sleep,
                                base_url=url, attempts=3) as broker:  # fmt: skip
            try:
                await drive(clock, broker.submit(shares()))
            except Exception as exc:
                return exc
        raise AssertionError("the submit succeeded")

    err = asyncio.run(scenario())
    assert isinstance(err, Retryable) and not isinstance(err, Ambiguous)
    assert "ConnectError" in str(err)
    assert (clock.now() - T0).total_seconds() == 3.0  # waited 1 s, then 2 s
    assert SECRET not in str(err) and KEY_ID not in str(err)


def test_an_unreadable_submit_answer_is_ambiguous(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading, clock: SimClock
) -> None:
    fake.script(Script(Reply(200, {"id": "x", "status": "accepted"}), process=True))
    err = _failure(server, clock, lambda b: b.submit(shares()))
    assert isinstance(err, Ambiguous)
    assert len(fake.orders) == 1


# --- the trade_updates stream ------------------------------------------------------------


async def _updates(feed: TradeUpdateFeed, n: int) -> list[TradeUpdate]:
    return [await asyncio.wait_for(feed.next_update(), 5) for _ in range(n)]


def _stream(
    server: AlpacaTradingLoopback, use: Callable[[AlpacaBroker, TradeUpdateFeed], Awaitable[T]]
) -> T:
    """A broker and an open feed on the real clock (no back-off happens here)."""

    async def scenario() -> T:
        feed = TradeUpdateFeed(server.stream_url, KEY_ID, SECRET, open_timeout_s=5)
        async with AlpacaBroker(
            key_id=KEY_ID, secret_key=SECRET, sleep=asyncio.sleep, base_url=server.url
        ) as broker:
            await feed.open()
            try:
                return await use(broker, feed)
            finally:
                await feed.close()

    return asyncio.run(scenario())


def test_an_order_filled_through_the_stream_in_binary_frames(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading
) -> None:
    order = shares()

    async def use(broker: AlpacaBroker, feed: TradeUpdateFeed) -> list[TradeUpdate]:
        await broker.submit(order)
        fake.fill(order.client_order_id, 5, 590.25)
        return await _updates(feed, 2)

    new, fill = _stream(server, use)
    assert fake.stream_received[:2] == [
        {"action": "auth", "key": KEY_ID, "secret": SECRET},
        {"action": "listen", "data": {"streams": ["trade_updates"]}},
    ]
    assert set(fake.frame_kinds) == {"binary"}  # what the paper stream sends
    assert (new.event, new.order.status, new.order.fills) == ("new", "new", ())
    assert (fill.event, fill.order.status, fill.order.filled_quantity) == ("fill", "filled", 5)
    (execution,) = fill.order.fills
    assert execution.fill_id == fake.executions[0]["id"]
    assert (execution.quantity, execution.price, execution.client_order_id) == (
        5,
        590.25,
        order.client_order_id,
    )
    assert execution.filled_at.tzinfo is not None


def test_a_partial_fill_then_the_rest_in_text_frames(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading
) -> None:
    fake.frames = "text"  # what the live stream sends
    order = calls_option(limit=2.5)

    async def use(broker: AlpacaBroker, feed: TradeUpdateFeed) -> list[TradeUpdate]:
        await broker.submit(order)
        fake.fill(order.client_order_id, 1, 2.4)
        fake.fill(order.client_order_id, 1, 2.5)
        return await _updates(feed, 3)

    _, partial, fill = _stream(server, use)
    assert set(fake.frame_kinds) == {"text"}
    assert (partial.event, partial.order.status, partial.order.filled_quantity) == (
        "partial_fill",
        "partially_filled",
        1,
    )
    assert (fill.event, fill.order.status, fill.order.filled_quantity) == ("fill", "filled", 2)
    assert fill.order.filled_avg_price == pytest.approx(2.45)
    assert fill.order.instrument == OCC_PADDED
    ids = [partial.order.fills[0].fill_id, fill.order.fills[0].fill_id]
    assert ids == [e["id"] for e in fake.executions] and ids[0] != ids[1]
    assert [u.order.fills[0].price for u in (partial, fill)] == [2.4, 2.5]


def test_a_rejection_and_a_cancel_come_through_the_stream_in_mixed_frames(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading
) -> None:
    fake.frames = "alternate"
    refused, resting = shares(7), calls_option(8)

    async def use(broker: AlpacaBroker, feed: TradeUpdateFeed) -> list[TradeUpdate]:
        await broker.submit(refused)
        await broker.submit(resting)
        fake.reject_at_venue(refused.client_order_id)
        await broker.cancel(resting.client_order_id)
        return await _updates(feed, 4)

    updates = _stream(server, use)
    assert {"binary", "text"} <= set(fake.frame_kinds)
    assert [(u.event, u.order.status) for u in updates] == [
        ("new", "new"),
        ("new", "new"),
        ("rejected", "rejected"),
        ("canceled", "canceled"),
    ]
    assert updates[2].order.reason == "alpaca:rejected"


def test_wrong_keys_on_the_stream_are_refused(server: AlpacaTradingLoopback) -> None:
    async def scenario() -> BaseException:
        feed = TradeUpdateFeed(server.stream_url, KEY_ID, "not-the-secret", open_timeout_s=5)
        try:
            await feed.open()
        except Rejected as exc:
            return exc
        finally:
            await feed.close()
        raise AssertionError("authorized")

    err = asyncio.run(scenario())
    assert isinstance(err, Rejected) and err.code == "broker_unauthorized"


def test_nothing_is_replayed_after_a_disconnect_but_a_lookup_shows_the_fill(
    server: AlpacaTradingLoopback, fake: FakeAlpacaTrading
) -> None:
    order, later = shares(11), shares(12)

    async def use(broker: AlpacaBroker, feed: TradeUpdateFeed) -> Any:
        await broker.submit(order)
        (new,) = await _updates(feed, 1)
        fake.pause_stream()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(feed.next_update(), 5)
        refused = TradeUpdateFeed(server.stream_url, KEY_ID, SECRET, open_timeout_s=5)
        with pytest.raises(Exception, match="503"):
            await refused.open()
        fake.fill(order.client_order_id, 5, 590.5)  # while nobody listens
        fake.resume_stream()
        again = TradeUpdateFeed(server.stream_url, KEY_ID, SECRET, open_timeout_s=5)
        await again.open()
        await broker.submit(later)
        (next_update,) = await _updates(again, 1)
        await again.close()
        return new, next_update, await broker.lookup(order.client_order_id)

    new, next_update, found = _stream(server, use)
    assert new.order.client_order_id == order.client_order_id
    assert next_update.order.client_order_id == later.client_order_id  # the fill is gone
    assert (found.status, found.filled_quantity, found.filled_avg_price) == ("filled", 5, 590.5)


# --- Alpaca's JSON, settings -----------------------------------------------------------------


def _order_json(status: str, filled: str = "0", avg: str | None = None) -> dict[str, Any]:
    return {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "tdm-0123456789abcdef01234567",
        "created_at": "2024-12-31T16:51:21.52544647Z",
        "updated_at": "2024-12-31T16:51:22.52549762Z",
        "symbol": "SPY",
        "asset_class": "us_equity",
        "qty": "5",
        "filled_qty": filled,
        "filled_avg_price": avg,
        "side": "sell",
        "status": status,
    }


@pytest.mark.parametrize(
    ("alpaca", "filled", "ours"),
    [
        ("new", "0", "new"),
        ("pending_new", "0", "accepted"),
        ("accepted", "0", "accepted"),
        ("held", "0", "accepted"),
        ("partially_filled", "2", "partially_filled"),
        ("done_for_day", "2", "partially_filled"),
        ("pending_cancel", "0", "accepted"),
        ("filled", "5", "filled"),
        ("canceled", "2", "canceled"),
        ("expired", "0", "expired"),
        ("replaced", "0", "canceled"),
        ("rejected", "0", "rejected"),
    ],
)
def test_alpaca_statuses_map_to_ours(alpaca: str, filled: str, ours: str) -> None:
    order = order_from_json(_order_json(alpaca, filled, "590.1" if filled != "0" else None))
    assert order.status == ours
    assert order.updated_at == datetime(2024, 12, 31, 16, 51, 22, 525497, tzinfo=UTC)
    assert order.filled_avg_price == (590.1 if filled != "0" else None)


def test_an_unknown_status_or_a_malformed_order_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown order status"):
        order_from_json(_order_json("teleported"))
    with pytest.raises(ValueError, match="KeyError"):
        order_from_json({"status": "new"})
    with pytest.raises(ValueError, match="fractional"):
        order_from_json({**_order_json("filled", "0.5", "590")})


def test_frames_the_tracker_does_not_act_on_are_other() -> None:
    pending = {"stream": "trade_updates", "data": {"event": "pending_cancel", "order": {}}}
    assert parse_frame(json.dumps(pending)) == Other("trade_updates:pending_cancel")
    assert parse_frame(b'{"stream": "account_updates", "data": {}}') == Other("account_updates")
    with pytest.raises(ValueError):
        parse_frame(b'{"no_stream": 1}')


def test_paper_is_the_default_and_live_needs_the_explicit_setting() -> None:
    paper = alpaca_endpoints(live=False)
    assert (paper.trading_url, paper.stream_url) == (ALPACA_PAPER_URL, ALPACA_PAPER_STREAM_URL)
    assert alpaca_endpoints(live=True).trading_url == ALPACA_LIVE_URL
    keys = {"TANDEM_ALPACA_KEY_ID": KEY_ID, "TANDEM_ALPACA_SECRET_KEY": SECRET}
    access = alpaca_access(load_settings({"TANDEM_BROKER": "alpaca", **keys}))
    assert access.endpoints.trading_url == ALPACA_PAPER_URL and not access.endpoints.live
    live = alpaca_access(
        load_settings({"TANDEM_BROKER": "alpaca", "TANDEM_ALPACA_LIVE": "true", **keys})
    )
    assert live.endpoints.trading_url == ALPACA_LIVE_URL
    assert KEY_ID not in repr(access) and SECRET not in repr(access)


def test_alpaca_without_keys_stops_start_up_naming_what_is_missing() -> None:
    with pytest.raises(Fatal) as info:
        load_settings({"TANDEM_BROKER": "alpaca"})
    assert info.value.message == (
        "TANDEM_BROKER=alpaca: missing TANDEM_ALPACA_KEY_ID, TANDEM_ALPACA_SECRET_KEY"
    )
    with pytest.raises(Fatal, match=r"missing TANDEM_ALPACA_SECRET_KEY$"):
        load_settings({"TANDEM_BROKER": "alpaca", "TANDEM_ALPACA_KEY_ID": KEY_ID})
    with pytest.raises(Fatal, match="TANDEM_ALPACA_LIVE: needs TANDEM_BROKER=alpaca"):
        load_settings({"TANDEM_ALPACA_LIVE": "true"})
    with pytest.raises(Fatal, match="TANDEM_ALPACA_STREAM_URL"):
        load_settings({"TANDEM_ALPACA_STREAM_URL": "http://127.0.0.1:1/stream"})
