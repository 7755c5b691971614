"""Tick sizes, price and quantity rounding, order validation and strike grids."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Fatal, Rejected
from engine.symbols import (
    GRID_TOLERANCE,
    SymbolProperties,
    SymbolTable,
    equity_tick,
    nearest_strike,
    on_grid,
    option_tick,
    properties_from_row,
    round_order_price,
    round_price,
    round_quantity,
    strike_grid,
    validate_order,
)

PENNY_ALL = SymbolProperties("SPY", option_tick_above=0.01)
STANDARD = SymbolProperties("AAPL", strike_step_near=2.5, strike_step_far=5.0)

ticks = st.sampled_from([0.0001, 0.01, 0.05, 0.10, 0.25, 0.5, 1.0, 2.5, 5.0])
prices = st.floats(0.0, 10_000.0)
sides = st.sampled_from(["buy", "sell", "nearest"])


def exact_multiple(value: float, tick: float) -> bool:
    """`value` printed with the tick's decimals is an exact decimal multiple of the tick."""
    places = max(0, -Decimal(repr(tick)).normalize().as_tuple().exponent)  # type: ignore[operator]
    text = f"{value:.{places}f}"
    return float(text) == value and Decimal(text) % Decimal(repr(tick)) == 0


# --- ticks ---------------------------------------------------------------------------------


def test_option_ticks_by_underlying_and_price() -> None:
    assert option_tick(PENNY_ALL, 0.50) == 0.01
    assert option_tick(PENNY_ALL, 12.34) == 0.01
    assert option_tick(STANDARD, 2.99) == 0.01
    assert option_tick(STANDARD, 3.00) == 0.05
    assert option_tick(STANDARD, 2.9999999999) == 0.05  # within tolerance of the break
    assert option_tick(STANDARD, 15.0) == 0.05


def test_equity_ticks() -> None:
    assert equity_tick(STANDARD, 0.5) == 0.0001
    assert equity_tick(STANDARD, 1.0) == 0.01
    assert equity_tick(STANDARD, 187.23) == 0.01


def test_equity_and_option_defaults() -> None:
    props = SymbolProperties("XYZ")
    assert props.option_multiplier == 100
    assert (props.equity_lot, props.equity_min_quantity) == (1, 1)
    assert (props.option_lot, props.option_min_quantity) == (1, 1)


# --- price rounding ------------------------------------------------------------------------


def test_round_price_examples() -> None:
    assert round_price(0.15, 0.05, "buy") == 0.15  # 0.15 / 0.05 is 2.9999999999999996
    assert round_price(0.17, 0.05, "buy") == 0.15
    assert round_price(0.17, 0.05, "sell") == 0.2
    assert round_price(0.17, 0.05, "nearest") == 0.15
    assert round_price(0.175, 0.05, "nearest") == 0.2
    assert round_price(1.9999999999, 0.05, "buy") == 2.0
    assert round_price(3.02, 0.05, "buy") == 3.0
    assert round_price(1.234567, 0.0001, "sell") == 1.2346


@given(prices, ticks, sides)
def test_rounded_price_is_on_grid_and_prints_exactly(price: float, tick: float, side: str) -> None:
    rounded = round_price(price, tick, side)  # type: ignore[arg-type]
    assert on_grid(rounded, tick)
    assert exact_multiple(rounded, tick)


@given(prices, ticks)
def test_buy_never_pays_more_and_sell_never_takes_less(price: float, tick: float) -> None:
    buy = round_price(price, tick, "buy")
    sell = round_price(price, tick, "sell")
    assert buy <= price + GRID_TOLERANCE
    assert sell >= price - GRID_TOLERANCE
    # ... and neither moves by a whole tick or more.
    assert price - buy < tick + GRID_TOLERANCE
    assert sell - price < tick + GRID_TOLERANCE


@given(prices, ticks)
def test_nearest_is_within_half_a_tick(price: float, tick: float) -> None:
    assert abs(round_price(price, tick, "nearest") - price) <= tick / 2 + GRID_TOLERANCE


@given(prices, ticks, sides, sides)
def test_rounding_is_idempotent(price: float, tick: float, side: str, again: str) -> None:
    once = round_price(price, tick, side)  # type: ignore[arg-type]
    assert round_price(once, tick, again) == once  # type: ignore[arg-type]


@given(st.floats(0.01, 500.0), sides, st.sampled_from([PENNY_ALL, STANDARD]), st.booleans())
def test_order_price_rounding_passes_validation(
    price: float, side: str, props: SymbolProperties, is_option: bool
) -> None:
    rounded = round_order_price(props, price, side, is_option)  # type: ignore[arg-type]
    if rounded > 0:
        validate_order(props, rounded, 1, is_option)


def test_round_price_refuses_nonsense() -> None:
    with pytest.raises(Rejected) as info:
        round_price(1.0, 0.0, "buy")
    assert info.value.code == "invalid_price"
    with pytest.raises(Rejected) as info:
        round_price(1.0, 0.01, "up")  # type: ignore[arg-type]
    assert info.value.code == "invalid_side"


# --- quantity rounding -----------------------------------------------------------------------


@given(st.floats(0.0, 1e6), st.integers(1, 500), st.integers(1, 1000))
def test_round_quantity_floors_to_lots(qty: float, lot: int, min_qty: int) -> None:
    rounded = round_quantity(qty, lot, min_qty)
    assert rounded % lot == 0
    assert rounded <= qty + GRID_TOLERANCE * lot
    assert rounded == 0 or rounded >= min_qty
    if rounded > 0:
        assert qty - rounded < lot
    assert round_quantity(rounded, lot, min_qty) == rounded


def test_round_quantity_examples() -> None:
    assert round_quantity(7.9, 1, 1) == 7
    assert round_quantity(0.3 / 0.1, 1, 1) == 3  # 2.9999999999999996 is three contracts
    assert round_quantity(250, 100, 100) == 200
    assert round_quantity(99, 100, 100) == 0
    assert round_quantity(150, 50, 200) == 0
    assert round_quantity(-3, 1, 1) == 0
    assert round_quantity(math.nan, 1, 1) == 0


# --- order validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "quantity", "is_option", "code"),
    [
        (0.0, 1, True, "non_positive_price"),
        (-1.0, 1, False, "non_positive_price"),
        (3.02, 1, True, "price_off_tick"),  # AAPL options trade in 0.05 from 3.00
        (2.995, 1, True, "price_off_tick"),
        (10.005, 1, False, "price_off_tick"),
        (1.50, 0, True, "non_positive_quantity"),
        (1.50, 1.5, True, "quantity_off_lot"),
    ],
)
def test_validate_order_codes(price: float, quantity: float, is_option: bool, code: str) -> None:
    with pytest.raises(Rejected) as info:
        validate_order(STANDARD, price, quantity, is_option)
    assert info.value.code == code


def test_validate_order_lot_and_minimum() -> None:
    props = SymbolProperties("ODD", equity_lot=100, equity_min_quantity=200)
    with pytest.raises(Rejected) as info:
        validate_order(props, 10.0, 100, is_option=False)
    assert info.value.code == "below_min_quantity"
    with pytest.raises(Rejected) as info:
        validate_order(props, 10.0, 250, is_option=False)
    assert info.value.code == "quantity_off_lot"
    validate_order(props, 10.0, 300, is_option=False)


def test_validate_order_accepts_valid_orders() -> None:
    validate_order(STANDARD, 3.05, 2, is_option=True)
    validate_order(STANDARD, 2.99, 1, is_option=True)
    validate_order(PENNY_ALL, 3.07, 10, is_option=True)
    validate_order(STANDARD, 0.5123, 10, is_option=False)  # sub-penny below $1
    validate_order(STANDARD, 0.15 + 0.05 - 0.05, 1, is_option=True)  # float noise is fine


# --- table -------------------------------------------------------------------------------------


def test_table_lookup_default_and_case() -> None:
    table = SymbolTable([PENNY_ALL, STANDARD])
    assert table.get("spy") is PENNY_ALL
    unknown = table.get(" msft ")
    assert unknown.symbol == "MSFT"
    assert unknown.option_tick_above == 0.05
    assert table.symbols() == ["AAPL", "SPY"]


def test_table_from_rows_with_star_default_and_blanks() -> None:
    rows = [
        {"symbol": "*", "option_multiplier": "10", "strike_step_near": ""},
        {"symbol": "qqq", "option_tick_above": "0.01", "strike_step_far": "2.5"},
    ]
    table = SymbolTable.from_rows(rows)
    assert table.get("QQQ").option_tick_above == 0.01
    assert table.get("QQQ").strike_step_far == 2.5
    assert table.get("QQQ").option_multiplier == 100  # a listed row does not inherit "*"
    assert table.get("ZZZ").option_multiplier == 10
    assert table.get("ZZZ").strike_step_near == 1.0


@pytest.mark.parametrize(
    "row",
    [
        {"symbol": "X", "option_lot": "1.5"},
        {"symbol": "X", "option_tick_above": "five cents"},
        {"symbol": "X", "option_tick_above": "0"},
        {"symbol": "X", "option_tick_break": "3.02"},  # not on the 0.05 grid
        {"symbol": "X", "near_band_pct": "-0.1"},
        {"symbol": ""},
    ],
)
def test_bad_rows_are_fatal(row: dict[str, str]) -> None:
    with pytest.raises(Fatal):
        properties_from_row(row)


def test_duplicate_symbols_are_fatal() -> None:
    with pytest.raises(Fatal):
        SymbolTable([PENNY_ALL, SymbolProperties("spy")])


# --- strikes -----------------------------------------------------------------------------------


def test_spy_strike_grid_golden() -> None:
    grid = strike_grid(PENNY_ALL, 168.3, 0.15)
    # $1 strikes within 10 % of spot (151.47..185.13), $5 strikes out to 15 %.
    assert grid == [145.0, 150.0, *(float(k) for k in range(152, 186)), 190.0]


def test_strike_grid_with_half_steps() -> None:
    props = SymbolProperties("BAC", strike_step_near=0.5, strike_step_far=1.0)
    assert strike_grid(props, 14.2, 0.3) == [
        10.0, 11.0, 12.0, 13.0, 13.5, 14.0, 14.5, 15.0, 15.5, 16.0, 17.0, 18.0
    ]  # fmt: skip


@given(
    st.floats(0.5, 5000.0),
    st.floats(0.01, 0.5),
    st.sampled_from([(1.0, 5.0), (2.5, 5.0), (0.5, 1.0), (5.0, 10.0), (1.0, 2.5)]),
    st.floats(0.0, 0.3),
)
def test_strike_grid_follows_the_rule(
    spot: float, width: float, steps: tuple[float, float], band: float
) -> None:
    near_step, far_step = steps
    props = SymbolProperties(
        "X", strike_step_near=near_step, strike_step_far=far_step, near_band_pct=band
    )
    grid = strike_grid(props, spot, width)
    assert grid == sorted(set(grid))
    assert all(k > 0 and exact_multiple(k, 0.5) for k in grid)
    # The same rule from plain integer multiples. Candidates within float noise of a band
    # edge may go either way, so both sides leave them out.
    near_edge, far_edge = spot * band, spot * width
    expected, edge = set(), set()
    for step, in_near_band in ((near_step, True), (far_step, False)):
        for n in range(1, math.floor((spot + far_edge) / step) + 2):
            k, dist = round(n * step, 6), abs(n * step - spot)
            if min(abs(dist - near_edge), abs(dist - far_edge)) < 1e-7:
                edge.add(k)
            elif dist <= far_edge and (dist < near_edge) == in_near_band:
                expected.add(k)
    assert {round(k, 6) for k in grid} - edge == expected - edge
    atm = nearest_strike(props, spot)
    assert atm > 0
    if spot * width >= max(near_step, far_step):
        assert atm in grid


def test_nearest_strike_examples() -> None:
    assert nearest_strike(PENNY_ALL, 168.3) == 168.0
    assert nearest_strike(PENNY_ALL, 168.5) == 169.0  # ties go up
    assert nearest_strike(STANDARD, 92.2) == 92.5
    assert nearest_strike(SymbolProperties("P", strike_step_near=5.0), 0.7) == 5.0


def test_strike_grid_refuses_bad_inputs() -> None:
    for spot, width in ((0.0, 0.1), (100.0, 0.0), (math.nan, 0.1)):
        with pytest.raises(Rejected) as info:
            strike_grid(PENNY_ALL, spot, width)
        assert info.value.code == "invalid_strike_grid"
