"""The PositionMonitor's pure decisions: session close, marks request, which exits are due."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.monitor import Held, Marked, exits_due, mark_price, marks_write, session_close_at
from engine.calendar import xnys_calendar
from engine.exits import PROFIT_TARGET, SESSION_END, STOP_LOSS, ExitRules
from engine.marketdata import OptionContract, OptionQuote, Quote, Right
from engine.positions import Position, mark
from storage.writes import AppendEvents, Update

OPENED = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)  # 10:00 ET, a Monday
CLOSE = datetime(2013, 10, 7, 20, 0, tzinfo=UTC)  # 16:00 ET
DEFAULTS = ExitRules(  # the migration's defaults
    profit_target_pct=0.5,
    stop_loss_pct=0.3,
    dte_threshold_days=1,
    session_end_minutes_before_close=5,
)


def held(n: int = 1, avg: float = 2.0, pending: bool = False, failed: int = 0) -> Held:
    position = Position(
        position_key=f"live/signal/{n}",
        engine="live",
        symbol="AIG",
        instrument="AIG   131018C00050000",
        asset_class="option",
        side="long",
        quantity=3,
        avg_price=avg,
        multiplier=100,
        opened_at=OPENED,
        right=Right.CALL,
        strike=50.0,
        expiry=date(2013, 10, 18),
    )
    return Held(n, position, exit_pending=pending, failed_exits=failed)


def marked_at(h: Held, price: float, now: datetime) -> Marked:
    return h, mark(h.position, price, now)


def test_the_session_close_is_known_only_during_regular_hours() -> None:
    cal = xnys_calendar()
    assert session_close_at(cal, CLOSE - timedelta(minutes=4)) == CLOSE
    assert session_close_at(cal, OPENED) == CLOSE
    assert session_close_at(cal, CLOSE) is None  # the close itself is outside [open, close)
    assert session_close_at(cal, datetime(2013, 10, 7, 13, 0, tzinfo=UTC)) is None  # 09:00 ET
    assert session_close_at(cal, datetime(2013, 10, 5, 17, 0, tzinfo=UTC)) is None  # Saturday
    half_day = datetime(2015, 12, 24, 17, 30, tzinfo=UTC)  # 12:30 ET, close 13:00 ET
    assert session_close_at(cal, half_day) == datetime(2015, 12, 24, 18, 0, tzinfo=UTC)


def test_an_option_is_marked_at_its_mid_and_shares_at_the_last_price() -> None:
    contract = OptionContract("AIG", date(2013, 10, 18), 50.0, Right.CALL)
    option = OptionQuote(contract, OPENED, 1.25, 1.75, 0.2, 50.2, "model")
    assert mark_price(option) == 1.5
    assert mark_price(Quote("AIG", OPENED, 50.25, 50.20, 50.30)) == 50.25


def test_marks_go_in_one_request_that_never_touches_a_closed_row() -> None:
    now = OPENED + timedelta(minutes=5)
    marked = [marked_at(held(1, 2.0), 2.5, now), marked_at(held(2, 1.0), 0.75, now)]
    request = marks_write(marked, now)
    *updates, events = request.parts
    assert [u.key for u in updates if isinstance(u, Update)] == [
        {"position_id": 1, "status": "open"},
        {"position_id": 2, "status": "open"},
    ]
    first = updates[0]
    assert isinstance(first, Update)
    assert first.values == {"mark": 2.5, "marked_at": now, "unrealised_pnl": 150.0}
    assert isinstance(events, AppendEvents)
    (event,) = events.events
    assert event.kind == "positions_marked" and event.event_time == now
    assert [p["unrealised_pnl"] for p in event.payload["positions"]] == [150.0, -75.0]


def test_a_rule_that_fires_plans_the_closing_order_with_its_reason() -> None:
    now = OPENED + timedelta(minutes=5)
    losing, winning, flat = held(1, 2.0), held(2, 2.0), held(3, 2.0)
    marked = [marked_at(losing, 1.4, now), marked_at(winning, 3.0, now), marked_at(flat, 2.1, now)]
    due = exits_due(marked, now, CLOSE, DEFAULTS)
    assert [(h.position_id, o.reason) for h, o in due] == [(1, STOP_LOSS), (2, PROFIT_TARGET)]
    _, order = due[0]
    assert order.idempotency_key == "live/signal/1/exit" and order.intent == "exit"
    assert order.side == "sell" and order.quantity == 3 and order.reference_price == 1.4
    assert order.created_at == now and order.signal_id is None


def test_session_end_fires_five_minutes_before_the_close_and_only_in_a_session() -> None:
    h = held()
    early, late = CLOSE - timedelta(minutes=6), CLOSE - timedelta(minutes=4)
    assert exits_due([marked_at(h, 2.0, early)], early, CLOSE, DEFAULTS) == []
    (due,) = exits_due([marked_at(h, 2.0, late)], late, CLOSE, DEFAULTS)
    assert due[1].reason == SESSION_END
    assert exits_due([marked_at(h, 2.0, late)], late, None, DEFAULTS) == []


def test_a_pending_exit_is_not_decided_again_and_a_failed_one_gets_a_new_key() -> None:
    now = CLOSE - timedelta(minutes=1)
    pending = marked_at(held(1, pending=True), 0.1, now)
    retried = marked_at(held(2, failed=2), 0.1, now)
    due = exits_due([pending, retried], now, CLOSE, DEFAULTS)
    assert [o.idempotency_key for _, o in due] == ["live/signal/2/exit/2"]


@given(
    st.lists(
        st.tuples(st.floats(0.01, 10.0), st.floats(0.0, 20.0), st.booleans(), st.integers(0, 3)),
        max_size=8,
    ),
    st.one_of(st.integers(0, 400), st.integers(350, 365)),  # often near the close
)
def test_exits_are_deterministic_one_per_position_and_close_all_of_it(
    specs: list[tuple[float, float, bool, int]], minutes: int
) -> None:
    now = OPENED + timedelta(minutes=minutes)
    close = session_close_at(xnys_calendar(), now)
    marked = [
        marked_at(held(i, avg, pending, failed), price, now)
        for i, (avg, price, pending, failed) in enumerate(specs)
    ]
    first = exits_due(marked, now, close, DEFAULTS)
    again = exits_due(marked, now, close, DEFAULTS)
    keys = [o.idempotency_key for _, o in first]
    assert keys == [o.idempotency_key for _, o in again]  # a second tick: the same orders
    assert len(set(keys)) == len(keys)
    for h, order in first:
        assert not h.exit_pending
        assert order.quantity == h.position.quantity and order.side == "sell"
        assert order.instrument == h.position.instrument
    if close is not None and now >= close - timedelta(minutes=5):
        assert {h.position_id for h, _ in first} == {
            h.position_id for h, _ in marked if not h.exit_pending
        }


def test_a_position_read_from_its_row_carries_the_option_right_as_the_enum() -> None:
    """The option model tests `right is Right.CALL`: a plain "call" string read from the
    database made an in-the-money call worth a put's intrinsic value at expiry."""
    from actors.pipeline import position_from_row
    from engine.quote_models import option_value

    row = {
        "idempotency_key": "live/signal/1",
        "engine": "live",
        "symbol": "SPY",
        "instrument": "SPY   131018C00167000",
        "asset_class": "option",
        "side": "long",
        "quantity": 3,
        "avg_price": 1.3,
        "multiplier": 100,
        "opened_at": datetime(2013, 10, 7, 15, 50, tzinfo=UTC),
        "strategy": "t",
        "option_right": "call",
        "strike": 167.0,
        "expiry": date(2013, 10, 18),
    }
    position = position_from_row(row)
    assert position.right is Right.CALL
    contract = position.contract
    assert contract is not None and contract.right is Right.CALL
    # at expiry (no time left) an in-the-money call is worth spot - strike
    assert option_value(170.3, 167.0, 0.0, 0.0, 0.2, contract.right) == pytest.approx(3.3)
