"""Listed expiries and strikes by rule, and the recorded-chain override."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.calendar import xnys_calendar
from engine.errors import Rejected
from engine.listing import (
    FRIDAY,
    MONDAY,
    WEDNESDAY,
    first_expiry_on_or_after,
    listed_contracts,
    listed_expiries,
    listed_strikes,
    monthly_expiry,
    third_friday,
)
from engine.marketdata import OptionContract, Right
from engine.symbols import SymbolProperties


def test_spy_2013_10_lists_weekly_fridays_and_the_friday_dated_monthly() -> None:
    expiries = listed_expiries("SPY", date(2013, 10, 7), 45)
    assert expiries == [
        date(2013, 10, 11),
        date(2013, 10, 18),  # the October monthly: its last trading day (officially 10-19)
        date(2013, 10, 25),
        date(2013, 11, 1),
        date(2013, 11, 8),
        date(2013, 11, 15),  # the November monthly
    ]
    assert all(d.weekday() == FRIDAY for d in expiries)


def test_monthly_expiry_is_the_third_friday() -> None:
    assert third_friday(2013, 10) == date(2013, 10, 18)
    assert monthly_expiry(2013, 10) == date(2013, 10, 18)
    assert monthly_expiry(2023, 8) == date(2023, 8, 18)


def test_monthly_on_good_friday_moves_to_thursday() -> None:
    assert third_friday(2014, 4) == date(2014, 4, 18)  # Good Friday, exchange closed
    assert monthly_expiry(2014, 4) == date(2014, 4, 17)
    assert date(2014, 4, 17) in listed_expiries("IBM", date(2014, 4, 1), 30)


def test_weekly_on_christmas_moves_to_the_previous_session_as_recorded_for_goog() -> None:
    on = date(2015, 12, 24)
    rule = listed_expiries("GOOG", on, 60)
    # The expiries of GOOG's recorded 2015-12-24 chain that fall within 60 days.
    recorded = [
        date(2015, 12, 24),
        date(2015, 12, 31),
        date(2016, 1, 8),
        date(2016, 1, 15),
        date(2016, 1, 22),
        date(2016, 1, 29),
        date(2016, 2, 5),
        date(2016, 2, 19),
    ]
    assert rule == recorded


def test_spy_wednesdays_from_september_2016_mondays_from_february_2018() -> None:
    before = listed_expiries("SPY", date(2016, 8, 1), 30)
    assert {d.weekday() for d in before} == {FRIDAY}
    wednesdays = listed_expiries("SPY", date(2017, 3, 1), 14)
    assert {d.weekday() for d in wednesdays} == {WEDNESDAY, FRIDAY}
    assert date(2017, 3, 1) in wednesdays  # an expiry on the day itself is listed
    mwf = listed_expiries("SPY", date(2019, 3, 4), 11)
    assert mwf == [
        date(2019, 3, 4),
        date(2019, 3, 6),
        date(2019, 3, 8),
        date(2019, 3, 11),
        date(2019, 3, 13),
        date(2019, 3, 15),
    ]
    assert {d.weekday() for d in listed_expiries("GOOG", date(2019, 3, 4), 30)} == {FRIDAY}


def test_spy_every_weekday_from_2022_11_14() -> None:
    assert listed_expiries("SPY", date(2022, 11, 11), 6) == [
        date(2022, 11, 11),
        date(2022, 11, 14),
        date(2022, 11, 16),
    ]
    week = listed_expiries("SPY", date(2022, 11, 14), 4)
    assert week == [date(2022, 11, 14) + timedelta(days=i) for i in range(5)]
    # Thanksgiving (Thursday 11-24) is closed: that expiry merges into Wednesday's.
    thanksgiving = listed_expiries("SPY", date(2022, 11, 21), 4)
    assert thanksgiving == [
        date(2022, 11, 21),
        date(2022, 11, 22),
        date(2022, 11, 23),
        date(2022, 11, 25),
    ]


def test_monday_holiday_moves_forward_wednesday_holiday_moves_back() -> None:
    mlk = listed_expiries("SPY", date(2019, 1, 18), 7)  # Monday 2019-01-21 is closed
    assert date(2019, 1, 21) not in mlk
    assert date(2019, 1, 22) in mlk
    july = listed_expiries("SPY", date(2018, 7, 2), 4)  # Wednesday 2018-07-04 is closed
    assert july == [date(2018, 7, 2), date(2018, 7, 3), date(2018, 7, 6)]


def test_short_dated_expiries_stop_after_six_weeks_monthlies_continue() -> None:
    expiries = listed_expiries("SPY", date(2013, 10, 7), 120)
    weeklies = [d for d in expiries if d != monthly_expiry(d.year, d.month)]
    assert max(weeklies) == date(2013, 11, 22)  # Friday of the sixth week after 10-07
    assert expiries[-1] == date(2014, 1, 17)  # the January monthly


def test_first_expiry_on_or_after() -> None:
    on = date(2013, 10, 7)
    assert first_expiry_on_or_after("SPY", on, 0) == date(2013, 10, 11)
    assert first_expiry_on_or_after("SPY", on, 7) == date(2013, 10, 18)
    assert first_expiry_on_or_after("SPY", on, 30) == date(2013, 11, 8)
    assert first_expiry_on_or_after("SPY", on, 300) == date(2014, 8, 15)
    assert first_expiry_on_or_after("SPY", date(2023, 8, 3), 0) == date(2023, 8, 3)
    with pytest.raises(Rejected) as err:
        first_expiry_on_or_after("SPY", on, -1)
    assert err.value.code == "invalid_dte"


def test_spy_strikes_are_one_dollar_near_spot_and_five_further_out() -> None:
    spot = 167.74
    strikes = listed_strikes("SPY", spot, date(2013, 10, 7), properties=SymbolProperties("SPY"))
    near = [k for k in strikes if abs(k - spot) <= 0.10 * spot]
    far = [k for k in strikes if abs(k - spot) > 0.10 * spot]
    assert near == [float(k) for k in range(151, 185)]
    assert far and all(k % 5 == 0 for k in far)
    assert min(strikes) == 120.0  # the first multiple of 5 above 0.7 x spot
    assert max(strikes) == 215.0  # the last multiple of 5 below 1.3 x spot
    assert strikes == sorted(set(strikes))


def test_recorded_chain_overrides_the_rule() -> None:
    recorded = [
        OptionContract("SPY", date(2023, 9, 1), strike, right)
        for strike in (470.0, 430.0)
        for right in (Right.PUT, Right.CALL)
    ]
    on = date(2023, 8, 3)
    assert listed_expiries("SPY", on, 45, recorded=recorded) == [date(2023, 9, 1)]
    assert first_expiry_on_or_after("SPY", on, 0, recorded=recorded) == date(2023, 9, 1)
    assert listed_strikes("SPY", 448.9, on, recorded=recorded) == [430.0, 470.0]
    contracts = listed_contracts("SPY", 448.9, on, 45, recorded=recorded)
    assert contracts == [
        OptionContract("SPY", date(2023, 9, 1), 430.0, Right.CALL),
        OptionContract("SPY", date(2023, 9, 1), 430.0, Right.PUT),
        OptionContract("SPY", date(2023, 9, 1), 470.0, Right.CALL),
        OptionContract("SPY", date(2023, 9, 1), 470.0, Right.PUT),
    ]
    # A chain recorded for another underlying does not override SPY's rule.
    assert len(listed_expiries("QQQ", on, 6, recorded=recorded)) > 1
    with pytest.raises(Rejected) as err:
        first_expiry_on_or_after("SPY", on, 60, recorded=recorded)
    assert err.value.code == "no_listed_expiry"


def test_rule_contracts_are_calls_and_puts_of_every_listed_expiry_and_strike() -> None:
    on, spot = date(2013, 10, 7), 167.74
    contracts = listed_contracts("SPY", spot, on, 10, properties=SymbolProperties("SPY"))
    expiries = listed_expiries("SPY", on, 10)
    strikes = listed_strikes("SPY", spot, on, properties=SymbolProperties("SPY"))
    assert len(contracts) == len(expiries) * len(strikes) * 2
    assert {(c.expiry, c.strike, c.right) for c in contracts} == {
        (e, k, r) for e in expiries for k in strikes for r in (Right.CALL, Right.PUT)
    }


@given(
    on=st.dates(min_value=date(2010, 1, 1), max_value=date(2034, 10, 1)),
    underlying=st.sampled_from(["SPY", "QQQ", "IWM", "GOOG", "AAPL"]),
    horizon=st.integers(min_value=0, max_value=400),
)
def test_expiries_are_sessions_in_the_window_with_a_monthly_each_month(
    on: date, underlying: str, horizon: int
) -> None:
    calendar = xnys_calendar()
    expiries = listed_expiries(underlying, on, horizon)
    assert expiries == sorted(set(expiries))
    assert all(on <= d <= on + timedelta(days=horizon) for d in expiries)
    assert all(calendar.is_session(d) for d in expiries)
    for d in expiries:
        nominal = {d, d + timedelta(days=1), d + timedelta(days=-1)}  # allow holiday moves
        if underlying not in {"SPY", "QQQ", "IWM"}:
            assert any(n.weekday() == FRIDAY for n in nominal)
        elif on < date(2018, 2, 16):
            assert any(n.weekday() in {WEDNESDAY, FRIDAY} for n in nominal)
        elif on < date(2022, 11, 14):
            assert any(n.weekday() in {MONDAY, WEDNESDAY, FRIDAY} for n in nominal)
    month = on.replace(day=1)
    while month <= on + timedelta(days=horizon):
        monthly = monthly_expiry(month.year, month.month)
        if on <= monthly <= on + timedelta(days=horizon):
            assert monthly in expiries
        month = (month + timedelta(days=32)).replace(day=1)
