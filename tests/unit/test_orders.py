"""Order planning: contract choice on real listed grids, sizing, idempotency, exits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.contract_choice import choose_contract, choose_expiry, choose_strike, right_for
from engine.errors import Fatal, Rejected
from engine.listing import first_expiry_on_or_after, listed_expiries, listed_strikes
from engine.marketdata import OptionContract, OptionQuote, Right
from engine.orders import (
    CLIENT_ORDER_ID_PREFIX,
    PlanConfig,
    PlannedOrder,
    client_order_id,
    entry_key,
    plan_entry,
    plan_exit,
    size_quantity,
)
from engine.positions import Position
from engine.symbols import SymbolProperties

SPY = SymbolProperties("SPY", option_tick_above=0.01)
IBM = SymbolProperties("IBM", strike_step_near=2.5)
ON = date(2013, 10, 7)
# 10:00 ET on Monday 2013-10-07; SPY's 09:30 minute bar closed at 167.44 that day.
NOW = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)
SPOT = 167.44
CONFIG = PlanConfig(capital=10_000.0, risk_pct=0.02, target_dte=7)


def spy_strikes(spot: float = SPOT) -> list[float]:
    return listed_strikes("SPY", spot, ON, properties=SPY)


def spy_expiries() -> list[date]:
    return listed_expiries("SPY", ON, 45)


def quote(contract: OptionContract, bid: float, ask: float) -> OptionQuote:
    return OptionQuote(contract, NOW, bid, ask, None, SPOT, "model")


def plan(ask: float, config: PlanConfig = CONFIG, direction: str = "long") -> PlannedOrder:
    def quote_for(contract: OptionContract) -> OptionQuote:
        return quote(contract, max(ask - 0.04, 0.0), ask)

    return plan_entry(
        signal_id=42,
        symbol="spy",
        direction=direction,
        spot=SPOT,
        props=SPY,
        config=config,
        now=NOW,
        listed_strikes=spy_strikes(),
        listed_expiries=spy_expiries(),
        quote_for=quote_for,
    )


# --- contract choice -----------------------------------------------------------------------


def test_right_follows_direction() -> None:
    assert right_for("long") is Right.CALL
    assert right_for("short") is Right.PUT
    with pytest.raises(Rejected) as err:
        right_for("flat")
    assert err.value.code == "invalid_direction"


def test_atm_strike_on_the_real_spy_grid_and_offsets_go_out_of_the_money() -> None:
    strikes = spy_strikes()
    assert {166.0, 167.0, 168.0} <= set(strikes)  # $1 strikes near spot
    assert choose_strike(strikes, SPOT, Right.CALL, 0) == 167.0
    assert choose_strike(strikes, SPOT, Right.PUT, 0) == 167.0
    assert choose_strike(strikes, SPOT, Right.CALL, 1) == 168.0
    assert choose_strike(strikes, SPOT, Right.CALL, 2) == 169.0
    assert choose_strike(strikes, SPOT, Right.PUT, 1) == 166.0
    assert choose_strike(strikes, SPOT, Right.PUT, -1) == 168.0  # negative: in the money
    assert choose_strike(strikes, 167.50, Right.PUT, 0) == 168.0  # a tie goes up


def test_offset_beyond_the_listed_strikes_is_rejected() -> None:
    strikes = spy_strikes()
    with pytest.raises(Rejected) as err:
        choose_strike(strikes, SPOT, Right.CALL, len(strikes))
    assert err.value.code == "no_listed_strike"
    with pytest.raises(Rejected) as err:
        choose_strike([], SPOT, Right.CALL, 0)
    assert err.value.code == "no_listed_strike"


def test_expiry_is_the_first_listed_at_or_after_the_dte_on_the_2013_calendar() -> None:
    expiries = spy_expiries()  # Fridays 10-11, 10-18 (monthly), 10-25, 11-01, 11-08, 11-15
    assert choose_expiry(expiries, ON, 0) == date(2013, 10, 11)
    assert choose_expiry(expiries, ON, 4) == date(2013, 10, 11)  # exactly 4 days: included
    assert choose_expiry(expiries, ON, 5) == date(2013, 10, 18)
    assert choose_expiry(expiries, ON, 7) == date(2013, 10, 18)
    assert choose_expiry(expiries, ON, 39) == date(2013, 11, 15)
    with pytest.raises(Rejected) as err:
        choose_expiry(expiries, ON, 40)
    assert err.value.code == "no_listed_expiry"


@given(st.integers(0, 60))
def test_expiry_choice_agrees_with_listing(dte: int) -> None:
    expiries = listed_expiries("SPY", ON, dte + 40)
    assert choose_expiry(expiries, ON, dte) == first_expiry_on_or_after("SPY", ON, dte)


def test_days_to_expiry_count_from_the_new_york_date() -> None:
    evening = datetime(2013, 10, 8, 2, 0, tzinfo=UTC)  # 22:00 ET on Monday 10-07
    contract = choose_contract(
        symbol="SPY",
        direction="long",
        spot=SPOT,
        listed_strikes=spy_strikes(),
        listed_expiries=spy_expiries(),
        target_dte=4,
        strike_offset_steps=0,
        now=evening,
    )
    assert contract.expiry == date(2013, 10, 11)  # the UTC date (10-08) would give 10-18


# --- sizing ----------------------------------------------------------------------------------


def test_golden_sizing() -> None:
    assert size_quantity(200.0, 1.23, 100, 1, 1) == 1  # floor(200 / 123)
    assert size_quantity(200.0, 0.99, 100, 1, 1) == 2  # floor(200 / 99)
    assert size_quantity(200.0, 2.00, 100, 1, 1) == 1  # exactly one: floor(200 / 200)
    assert size_quantity(200.0, 2.50, 100, 1, 1) == 0  # floor(200 / 250)


def test_option_entry_buys_the_chosen_call_sized_on_the_ask() -> None:
    order = plan(1.23)
    assert order.side == "buy" and order.position_side == "long"
    assert order.asset_class == "option" and order.intent == "entry"
    assert order.right is Right.CALL and order.strike == 167.0
    assert order.expiry == date(2013, 10, 18)
    assert order.instrument == "SPY   131018C00167000"
    assert order.quantity == 1 and order.multiplier == 100
    assert order.reference_price == 1.23
    assert order.signal_id == 42 and order.created_at == NOW
    assert order.order_type == "paper"


def test_short_signal_buys_a_put() -> None:
    order = plan(0.99, direction="short")
    assert order.right is Right.PUT and order.side == "buy"
    assert order.instrument == "SPY   131018P00167000"
    assert order.quantity == 2


def test_premium_too_high_is_zero_quantity() -> None:
    with pytest.raises(Rejected) as err:
        plan(2.50)
    assert err.value.code == "zero_quantity"


def test_missing_or_unusable_quote_is_no_quote() -> None:
    other = OptionContract("SPY", date(2013, 10, 18), 170.0, Right.CALL)
    lookups = [
        lambda c: None,
        lambda c: quote(c, 0.0, 0.0),  # no offer
        lambda c: quote(other, 1.0, 1.1),  # a quote for another contract
    ]
    for quote_for in lookups:
        with pytest.raises(Rejected) as err:
            plan_entry(
                signal_id=1,
                symbol="SPY",
                direction="long",
                spot=SPOT,
                props=SPY,
                config=CONFIG,
                now=NOW,
                listed_strikes=spy_strikes(),
                listed_expiries=spy_expiries(),
                quote_for=quote_for,
            )
        assert err.value.code == "no_quote"


def plan_shares(direction: str, capital: float, risk_pct: float) -> PlannedOrder:
    config = PlanConfig(instrument_mode="equity", capital=capital, risk_pct=risk_pct)
    return plan_entry(
        signal_id=7,
        symbol="spy",
        direction=direction,
        spot=SPOT,
        props=SPY,
        config=config,
        now=NOW,
    )


def test_equity_mode_sizes_shares_the_same_way() -> None:
    long = plan_shares("long", 100_000.0, 0.02)
    assert long.quantity == 11  # floor(2,000 / 167.44)
    assert (long.side, long.position_side, long.instrument) == ("buy", "long", "SPY")
    assert long.asset_class == "equity" and long.multiplier == 1 and long.contract is None
    short = plan_shares("short", 100_000.0, 0.02)
    assert (short.side, short.position_side, short.quantity) == ("sell", "short", 11)
    with pytest.raises(Rejected) as err:
        plan_shares("long", 1_000.0, 0.1)  # 100 buys no share at 167.44
    assert err.value.code == "zero_quantity"


def test_budget_is_capital_times_risk() -> None:
    assert CONFIG.budget == 200.0
    assert PlanConfig(capital=25_000.0, risk_pct=0.01).budget == 250.0


def test_config_is_validated() -> None:
    with pytest.raises(Fatal):
        PlanConfig(risk_pct=2.0)  # 2 means 200 %: a fraction is expected
    with pytest.raises(Fatal):
        PlanConfig(capital=0.0)
    with pytest.raises(Fatal):
        PlanConfig(target_dte=-1)


@given(
    budget=st.floats(1.0, 1e6),
    premium=st.floats(0.01, 500.0),
    multiplier=st.sampled_from([1, 10, 100]),
)
def test_size_is_the_largest_affordable_quantity(
    budget: float, premium: float, multiplier: int
) -> None:
    qty = size_quantity(budget, premium, multiplier, 1, 1)
    assert qty * premium * multiplier <= budget * (1 + 1e-9)
    assert (qty + 1) * premium * multiplier > budget * (1 - 1e-9)


# --- idempotency ---------------------------------------------------------------------------


def test_one_signal_one_key_per_engine() -> None:
    first, again = plan(1.23), plan(1.23)
    assert first.idempotency_key == again.idempotency_key == entry_key(42) == "live/signal/42"
    assert first.client_order_id == again.client_order_id == client_order_id("live/signal/42")
    assert entry_key(42, "shadow") != entry_key(42)
    assert client_order_id(entry_key(42, "shadow")) != first.client_order_id
    assert first.client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)
    assert len(first.client_order_id) == len(CLIENT_ORDER_ID_PREFIX) + 24
    int(first.client_order_id.removeprefix(CLIENT_ORDER_ID_PREFIX), 16)  # hex digits


# --- exits ---------------------------------------------------------------------------------


def position(side: str = "long", asset_class: str = "option") -> Position:
    option = asset_class == "option"
    return Position(
        position_key="live/signal/42",
        engine="live",
        symbol="SPY",
        instrument="SPY   131018C00167000" if option else "SPY",
        asset_class=asset_class,  # type: ignore[arg-type]
        side=side,  # type: ignore[arg-type]
        quantity=3,
        avg_price=1.25,
        multiplier=100 if option else 1,
        opened_at=NOW,
        right=Right.CALL if option else None,
        strike=167.0 if option else None,
        expiry=date(2013, 10, 18) if option else None,
    )


def test_exit_closes_the_whole_position_on_the_opposite_side() -> None:
    later = NOW + timedelta(hours=2)
    order = plan_exit(position(), later, "profit_target", reference_price=1.9)
    assert (order.side, order.quantity, order.intent) == ("sell", 3, "exit")
    assert order.idempotency_key == "live/signal/42/exit"
    assert order.client_order_id == client_order_id("live/signal/42/exit")
    assert order.reason == "profit_target" and order.created_at == later
    assert order.contract == OptionContract("SPY", date(2013, 10, 18), 167.0, Right.CALL)
    assert order.signal_id is None and order.reference_price == 1.9
    retry = plan_exit(position(), later, "profit_target", attempt=1)
    assert retry.idempotency_key == "live/signal/42/exit/1"
    cover = plan_exit(position("short", "equity"), later, "stop_loss")
    assert (cover.side, cover.position_side, cover.multiplier) == ("buy", "short", 1)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        plan_exit(position(), datetime(2013, 10, 7, 14, 0), "time_stop")
