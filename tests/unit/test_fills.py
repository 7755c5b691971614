"""The paper fill model (docs/fills.md): golden prices and the invariants as properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Rejected
from engine.fills import (
    MODEL_EQUITY_NEXT_OPEN,
    MODEL_OPTION_MID,
    equity_fill_price,
    fill_equity_next_open,
    fill_option,
    option_fill_price,
)
from engine.marketdata import Bar, OptionContract, OptionQuote, Right
from engine.orders import PlannedOrder, client_order_id
from engine.symbols import (
    GRID_TOLERANCE,
    SymbolProperties,
    equity_tick,
    on_grid,
    option_tick,
    round_price,
)

IBM = SymbolProperties("IBM", strike_step_near=2.5)  # options: $0.01 below $3, $0.05 above
SPY = SymbolProperties("SPY", option_tick_above=0.01)  # penny pilot: $0.01 everywhere
NOW = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)
IBM_CALL = OptionContract("IBM", date(2013, 10, 18), 185.0, Right.CALL)


def option_order(side: str = "buy", quantity: int = 2) -> PlannedOrder:
    key = "live/signal/9"
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="entry",
        signal_id=9,
        engine="live",
        symbol="IBM",
        instrument=IBM_CALL.occ_symbol,
        asset_class="option",
        right=IBM_CALL.right,
        strike=IBM_CALL.strike,
        expiry=IBM_CALL.expiry,
        side=side,  # type: ignore[arg-type]
        position_side="long",
        quantity=quantity,
        multiplier=100,
        reference_price=None,
        created_at=NOW - timedelta(seconds=1),
    )


def share_order(side: str = "buy") -> PlannedOrder:
    key = "live/signal/10"
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="entry",
        signal_id=10,
        engine="live",
        symbol="SPY",
        instrument="SPY",
        asset_class="equity",
        right=None,
        strike=None,
        expiry=None,
        side=side,  # type: ignore[arg-type]
        position_side="long",
        quantity=11,
        multiplier=1,
        reference_price=167.44,
        created_at=datetime(2013, 10, 7, 13, 31, tzinfo=UTC),
    )


def ibm_quote(bid: float, ask: float, ts: datetime = NOW) -> OptionQuote:
    return OptionQuote(IBM_CALL, ts, bid, ask, None, 185.0, "model")


# SPY's real 09:31 ET minute bar of 2013-10-07 (open 167.47, high 167.47, low 167.31).
SPY_0931 = Bar(
    "SPY", datetime(2013, 10, 7, 13, 31, tzinfo=UTC), 167.47, 167.47, 167.31, 167.37, 876364
)


# --- options: golden -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "ask", "buy", "sell"),
    [
        (4.10, 4.30, 4.25, 4.15),  # wide spread: mid 4.20 ± one $0.05 tick
        (4.10, 4.25, 4.25, 4.10),  # mid 4.175 off the grid: 4.225 up, 4.125 down
        (4.20, 4.25, 4.25, 4.20),  # narrow spread: capped at the touch
    ],
)
def test_golden_fills_on_the_five_cent_grid_above_three_dollars(
    bid: float, ask: float, buy: float, sell: float
) -> None:
    assert option_fill_price("buy", bid, ask, IBM, 1) == buy
    assert option_fill_price("sell", bid, ask, IBM, 1) == sell


def test_without_slippage_the_off_grid_mid_rounds_against_us() -> None:
    assert option_fill_price("buy", 4.10, 4.25, IBM, 0) == 4.20
    assert option_fill_price("sell", 4.10, 4.25, IBM, 0) == 4.15


def test_penny_grid_and_the_three_dollar_break() -> None:
    assert option_fill_price("buy", 1.20, 1.26, SPY, 1) == 1.24
    assert option_fill_price("sell", 1.20, 1.26, SPY, 1) == 1.22
    # mid 3.00 uses the $0.05 tick for slippage; the sell lands below the break on cents
    assert option_fill_price("buy", 2.90, 3.10, IBM, 1) == 3.05
    assert option_fill_price("sell", 2.90, 3.10, IBM, 1) == 2.95


def test_no_bid_sells_for_nothing_and_no_offer_cannot_buy() -> None:
    assert option_fill_price("sell", 0.0, 0.05, SPY, 2) == 0.0
    assert option_fill_price("buy", 0.0, 0.05, SPY, 2) == 0.05
    assert option_fill_price("sell", 0.0, 0.0, SPY, 1) == 0.0
    with pytest.raises(Rejected) as err:
        option_fill_price("buy", 0.0, 0.0, SPY, 1)
    assert err.value.code == "no_offer"


@pytest.mark.parametrize(("bid", "ask"), [(1.3, 1.2), (-0.01, 0.5), (float("nan"), 1.0)])
def test_impossible_quotes_are_rejected(bid: float, ask: float) -> None:
    with pytest.raises(Rejected) as err:
        option_fill_price("buy", bid, ask, SPY, 1)
    assert err.value.code == "invalid_quote"


def test_fill_option_records_the_order_and_the_fill() -> None:
    fill = fill_option(option_order("buy"), ibm_quote(4.10, 4.30), IBM, 1, NOW)
    assert (fill.price, fill.quantity, fill.side, fill.multiplier) == (4.25, 2, "buy", 100)
    assert fill.idempotency_key == "live/signal/9" and fill.engine == "live"
    assert fill.client_order_id == client_order_id("live/signal/9")
    assert fill.instrument == IBM_CALL.occ_symbol and fill.contract == IBM_CALL
    assert fill.filled_at == NOW and fill.fees == 0.0
    assert fill.reference_price == pytest.approx(4.20) and fill.model == MODEL_OPTION_MID
    assert fill.notional == pytest.approx(850.0)


def test_fee_model_hook() -> None:
    def per_contract(order: PlannedOrder, price: float, quantity: int) -> float:
        return 0.65 * quantity

    fill = fill_option(option_order(), ibm_quote(4.10, 4.30), IBM, 1, NOW, fees=per_contract)
    assert fill.fees == pytest.approx(1.30)
    with pytest.raises(Rejected) as err:
        fill_option(option_order(), ibm_quote(4.10, 4.30), IBM, 1, NOW, fees=lambda o, p, q: -1.0)
    assert err.value.code == "invalid_fees"


def test_quote_must_be_the_orders_contract_and_not_from_the_future() -> None:
    strike_190 = OptionContract("IBM", IBM_CALL.expiry, 190.0, Right.CALL)
    other = OptionQuote(strike_190, NOW, 1.0, 1.1, None, 185.0, "model")
    with pytest.raises(Rejected) as err:
        fill_option(option_order(), other, IBM, 1, NOW)
    assert err.value.code == "quote_mismatch"
    with pytest.raises(Rejected) as err:
        fill_option(option_order(), ibm_quote(4.1, 4.3, NOW + timedelta(seconds=1)), IBM, 1, NOW)
    assert err.value.code == "quote_from_future"


# --- shares: next bar open -----------------------------------------------------------------


def test_next_open_on_a_real_spy_bar() -> None:
    # two cents of slippage: the buy would be 167.49, above the bar's high of 167.47
    assert equity_fill_price("buy", SPY_0931, SPY, 2) == 167.47
    assert equity_fill_price("sell", SPY_0931, SPY, 2) == 167.45
    assert equity_fill_price("sell", SPY_0931, SPY, 20) == 167.31  # capped at the low
    fill = fill_equity_next_open(
        share_order(), SPY_0931, SPY, 2, SPY_0931.ts + timedelta(minutes=1)
    )
    assert (fill.price, fill.quantity, fill.filled_at) == (167.47, 11, SPY_0931.ts)
    assert fill.reference_price == 167.47 and fill.model == MODEL_EQUITY_NEXT_OPEN


def test_the_bar_must_open_between_the_order_and_now() -> None:
    before = Bar(
        "SPY", datetime(2013, 10, 7, 13, 30, tzinfo=UTC), 167.43, 167.52, 167.41, 167.44, 1
    )
    with pytest.raises(Rejected) as err:
        fill_equity_next_open(share_order(), before, SPY, 1, NOW)
    assert err.value.code == "not_next_bar"
    with pytest.raises(Rejected) as err:
        fill_equity_next_open(share_order(), SPY_0931, SPY, 1, SPY_0931.ts - timedelta(seconds=1))
    assert err.value.code == "not_next_bar"
    with pytest.raises(Rejected) as err:
        fill_equity_next_open(option_order(), SPY_0931, SPY, 1, NOW)
    assert err.value.code == "bar_mismatch"


# --- properties ----------------------------------------------------------------------------

quotes = st.tuples(st.floats(0.0, 60.0), st.floats(0.0, 20.0)).map(lambda t: (t[0], t[0] + t[1]))
props = st.sampled_from([IBM, SPY, SymbolProperties("BAC", option_tick_break=5.0)])
slippage = st.integers(0, 6)


@given(quotes, props, slippage)
def test_option_fills_are_on_the_grid_and_bracket_the_mid(
    quote: tuple[float, float], p: SymbolProperties, slip: int
) -> None:
    bid, ask = quote
    mid = (bid + ask) / 2.0
    sell = option_fill_price("sell", bid, ask, p, slip)
    assert on_grid(sell, option_tick(p, sell))
    assert 0.0 <= sell <= mid + GRID_TOLERANCE
    assert sell >= round_price(bid, option_tick(p, bid), "buy")  # never below the bid's tick
    if ask > 0:
        buy = option_fill_price("buy", bid, ask, p, slip)
        assert on_grid(buy, option_tick(p, buy))
        assert buy >= mid - GRID_TOLERANCE
        assert buy >= sell
        assert buy <= round_price(ask, option_tick(p, ask), "sell")  # never above the ask's tick


@given(st.floats(1.0, 500.0), st.floats(0.0, 5.0), st.floats(0.0, 5.0), slippage)
def test_share_fills_are_on_the_grid_and_inside_the_bar(
    open_: float, up: float, down: float, slip: int
) -> None:
    bar = Bar("SPY", NOW, open_, open_ + up, max(open_ - down, 0.5), open_, 100)
    buy = equity_fill_price("buy", bar, SPY, slip)
    sell = equity_fill_price("sell", bar, SPY, slip)
    assert on_grid(buy, equity_tick(SPY, buy)) and on_grid(sell, equity_tick(SPY, sell))
    assert buy >= open_ - GRID_TOLERANCE
    assert sell <= open_ + GRID_TOLERANCE
    assert buy <= round_price(bar.high, equity_tick(SPY, bar.high), "sell")
    assert sell >= round_price(bar.low, equity_tick(SPY, bar.low), "buy")
