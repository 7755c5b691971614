"""Positions: open, add, reduce, close and mark, with hand-computed P&L."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Rejected
from engine.fills import Fill
from engine.marketdata import OptionContract, Right
from engine.positions import Position, apply_fill, closed_trade, mark, open_position

T0 = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)
CALL = OptionContract("SPY", date(2013, 10, 18), 167.0, Right.CALL)


def option_fill(
    side: str, quantity: int, price: float, fees: float = 0.0, minutes: int = 0
) -> Fill:
    return Fill(
        idempotency_key="live/signal/1",
        client_order_id="tdm-x",
        engine="live",
        symbol="SPY",
        instrument=CALL.occ_symbol,
        asset_class="option",
        contract=CALL,
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        price=price,
        multiplier=100,
        fees=fees,
        filled_at=T0 + timedelta(minutes=minutes),
        reference_price=price,
        model="test",
    )


def share_fill(side: str, quantity: int, price: float) -> Fill:
    return Fill(
        idempotency_key="live/signal/2",
        client_order_id="tdm-y",
        engine="shadow",
        symbol="SPY",
        instrument="SPY",
        asset_class="equity",
        contract=None,
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        price=price,
        multiplier=1,
        fees=0.0,
        filled_at=T0,
        reference_price=price,
        model="test",
    )


def test_a_buy_opens_a_long_option_position_with_its_contract() -> None:
    pos = open_position(option_fill("buy", 2, 1.25), strategy="orb")
    assert (pos.side, pos.quantity, pos.avg_price, pos.multiplier) == ("long", 2, 1.25, 100)
    assert pos.position_key == "live/signal/1" and pos.opened_at == T0
    assert pos.contract == CALL and pos.expiry == date(2013, 10, 18)
    assert pos.strategy == "orb" and pos.cost_basis == pytest.approx(250.0)


def test_a_sell_of_shares_opens_a_short() -> None:
    pos = open_position(share_fill("sell", 10, 100.0))
    assert pos.side == "short" and pos.sign == -1 and pos.contract is None
    assert pos.engine == "shadow"


def test_golden_marks() -> None:
    long = mark(open_position(option_fill("buy", 2, 1.25)), 1.50, T0)
    assert long.unrealised_pnl == pytest.approx(50.0)  # 0.25 × 2 × 100
    assert long.pnl_ratio == pytest.approx(0.20)
    short = mark(open_position(share_fill("sell", 10, 100.0)), 95.0, T0)
    assert short.unrealised_pnl == pytest.approx(50.0)  # (95 − 100) × 10 × −1
    assert short.pnl_ratio == pytest.approx(0.05)
    with pytest.raises(Rejected) as err:
        mark(long.position, float("nan"), T0)
    assert err.value.code == "invalid_mark"


def test_add_averages_and_reduce_realises() -> None:
    pos = open_position(option_fill("buy", 2, 1.25))
    grown, realised = apply_fill(pos, option_fill("buy", 2, 1.45))
    assert grown is not None and realised == 0.0
    assert grown.quantity == 4 and grown.avg_price == pytest.approx(1.35)
    smaller, realised = apply_fill(grown, option_fill("sell", 1, 1.60))
    assert smaller is not None and smaller.quantity == 3
    assert smaller.avg_price == pytest.approx(1.35)
    assert realised == pytest.approx(25.0)  # (1.60 − 1.35) × 1 × 100
    flat, realised = apply_fill(smaller, option_fill("sell", 3, 1.00))
    assert flat is None and realised == pytest.approx(-105.0)  # (1.00 − 1.35) × 3 × 100


def test_fees_are_carried_pro_rata_into_realised() -> None:
    pos = open_position(option_fill("buy", 2, 1.25, fees=1.30))
    half, realised = apply_fill(pos, option_fill("sell", 1, 1.50, fees=0.65))
    assert realised == pytest.approx(25.0 - 0.65 - 0.65)
    assert half is not None and half.entry_fees == pytest.approx(0.65)
    _, rest = apply_fill(half, option_fill("sell", 1, 1.50, fees=0.65))
    assert rest == pytest.approx(25.0 - 0.65 - 0.65)


def test_reducing_beyond_the_position_or_another_instrument_is_rejected() -> None:
    pos = open_position(option_fill("buy", 2, 1.25))
    with pytest.raises(Rejected) as err:
        apply_fill(pos, option_fill("sell", 3, 1.30))
    assert err.value.code == "reduce_beyond_position"
    with pytest.raises(Rejected) as err:
        apply_fill(pos, share_fill("sell", 1, 100.0))
    assert err.value.code == "instrument_mismatch"


def test_closed_trade_profit_ratio_is_on_the_closed_cost_basis() -> None:
    pos = open_position(option_fill("buy", 2, 1.25))
    exit_fill = option_fill("sell", 2, 0.75, minutes=30)
    _, realised = apply_fill(pos, exit_fill)
    trade = closed_trade(pos, exit_fill, realised, "stop_loss")
    assert trade.realised_pnl == pytest.approx(-100.0)
    assert trade.profit_ratio == pytest.approx(-0.40)  # −100 / 250
    assert trade.closed_at == T0 + timedelta(minutes=30)
    assert (trade.symbol, trade.exit_reason, trade.side) == ("SPY", "stop_loss", "long")


prices = st.floats(0.01, 1_000.0)


@given(prices, prices, st.integers(1, 500), st.sampled_from(["buy", "sell"]))
def test_open_then_close_realises_the_price_difference(
    entry: float, exit_: float, qty: int, side: str
) -> None:
    pos = open_position(share_fill(side, qty, entry))
    closing = "sell" if side == "buy" else "buy"
    flat, realised = apply_fill(pos, share_fill(closing, qty, exit_))
    sign = 1 if side == "buy" else -1
    assert flat is None
    assert realised == pytest.approx((exit_ - entry) * qty * 1 * sign, rel=1e-9, abs=1e-9)
    marked = mark(pos, exit_, T0)
    assert marked.unrealised_pnl == pytest.approx(realised, rel=1e-9, abs=1e-9)


@given(prices, prices, st.integers(2, 100), st.data())
def test_closing_in_parts_realises_the_same_as_at_once(
    entry: float, exit_: float, qty: int, data: st.DataObject
) -> None:
    part = data.draw(st.integers(1, qty - 1))
    pos: Position | None = open_position(option_fill("buy", qty, entry, fees=0.01 * qty))
    assert pos is not None
    whole = apply_fill(pos, option_fill("sell", qty, exit_))[1]
    first_pos, first = apply_fill(pos, option_fill("sell", part, exit_))
    assert first_pos is not None
    rest_pos, rest = apply_fill(first_pos, option_fill("sell", qty - part, exit_))
    assert rest_pos is None
    assert first + rest == pytest.approx(whole, rel=1e-9, abs=1e-9)


def test_a_positions_direction_is_its_view_on_the_underlying() -> None:
    base = open_position(option_fill("buy", 1, 1.0))
    views = {
        ("long", None): "long",
        ("short", None): "short",
        ("long", Right.CALL): "long",
        ("long", Right.PUT): "short",
        ("short", Right.CALL): "short",
        ("short", Right.PUT): "long",
    }
    for (side, right), view in views.items():
        assert replace(base, side=side, right=right).direction == view
