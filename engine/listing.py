"""Which option contracts are listed on a date: expiry calendars and strikes by rule.

A rule per underlying generates the expiries and strikes a venue would list; a recorded
chain overrides it (when quotes were recorded for an underlying on a date, the listed
contracts are exactly the recorded ones: pass them as `recorded`).

Expiries (dates are the last trading day, which is also the date in the OCC symbol):

- Every underlying: the monthly expiry, the third Friday of each month. Until February
  2015 the official expiration date of a monthly was the Saturday after it; we use the
  Friday (the last trading day) for every year, so one date names one contract.
- Every underlying: weekly Friday expiries ("Weeklys").
- SPY, QQQ and IWM (`MULTI_EXPIRY_UNDERLYINGS`) also list, by the date `on`:
  Wednesdays from `WEDNESDAY_EXPIRIES_FROM` (2016-09-07, SPY Wednesday Weeklys), Mondays
  from `MONDAY_EXPIRIES_FROM` (2018-02-16, SPY Monday Weeklys) and Tuesdays and
  Thursdays from `DAILY_EXPIRIES_FROM` (2022-11-14), i.e. every weekday. These are SPY's
  dates; QQQ and IWM are given the same ones (a simplification).
- Short-dated (non-monthly) expiries are listed for the week of `on` and the following
  `SHORT_DATED_WEEKS` (6) weeks; monthlies at any horizon. Quarterly and end-of-month
  expiries are not modelled.
- An expiry that falls on an exchange holiday moves to the previous session (the
  Friday before Christmas 2015 became Thursday 2015-12-24), except a Monday expiry,
  which moves to the next session (the Cboe rule for Monday Weeklys).

Strikes come from the underlying's `SymbolProperties` (`engine.symbols.strike_grid`):
multiples of `strike_step_near` within `near_band_pct` of spot (SPY: $1 within ±10 %),
multiples of `strike_step_far` further out (SPY: $5), up to `STRIKE_WIDTH` (±30 %).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

from engine.calendar import MarketCalendar, xnys_calendar
from engine.errors import Rejected
from engine.marketdata import OptionContract, Right
from engine.symbols import SymbolProperties, strike_grid

MULTI_EXPIRY_UNDERLYINGS = frozenset({"SPY", "QQQ", "IWM"})
WEDNESDAY_EXPIRIES_FROM = date(2016, 9, 7)
MONDAY_EXPIRIES_FROM = date(2018, 2, 16)
DAILY_EXPIRIES_FROM = date(2022, 11, 14)
SHORT_DATED_WEEKS = 6
STRIKE_WIDTH = 0.30
MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = range(5)
# How far `first_expiry_on_or_after` looks past the requested date: a monthly always
# exists within this many days.
_MONTHLY_SEARCH_DAYS = 40


def expiry_weekdays(underlying: str, on: date) -> frozenset[int]:
    """Weekdays (Monday = 0) with short-dated expiries for `underlying` as listed on `on`."""
    days = {FRIDAY}
    if underlying.upper() in MULTI_EXPIRY_UNDERLYINGS:
        if on >= WEDNESDAY_EXPIRIES_FROM:
            days.add(WEDNESDAY)
        if on >= MONDAY_EXPIRIES_FROM:
            days.add(MONDAY)
        if on >= DAILY_EXPIRIES_FROM:
            days |= {TUESDAY, THURSDAY}
    return frozenset(days)


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month (the nominal monthly expiry)."""
    first = date(year, month, 1)
    return first + timedelta(days=(FRIDAY - first.weekday()) % 7 + 14)


def monthly_expiry(year: int, month: int, calendar: MarketCalendar | None = None) -> date:
    """The monthly expiry of a month: its third Friday, or the session before a holiday."""
    return _move_off_holiday(third_friday(year, month), calendar or xnys_calendar())


def listed_expiries(
    underlying: str,
    on: date,
    horizon_days: int,
    *,
    calendar: MarketCalendar | None = None,
    recorded: Collection[OptionContract] = (),
) -> list[date]:
    """Expiries listed on `on` that fall in [on, on + horizon_days], ascending.

    With `recorded` contracts for `underlying`, exactly their expiries (in that window).
    """
    if horizon_days < 0:
        raise Rejected("invalid_horizon", f"horizon_days must be >= 0, got {horizon_days}")
    last = on + timedelta(days=horizon_days)
    own = _recorded_for(underlying, recorded)
    if own:
        return sorted({c.expiry for c in own if on <= c.expiry <= last})
    cal = calendar or xnys_calendar()
    found = set(_monthlies(on, last, cal))
    short_end = min(last, _week_start(on) + timedelta(weeks=SHORT_DATED_WEEKS + 1, days=-1))
    weekdays = expiry_weekdays(underlying, on)
    day = on - timedelta(days=3)  # a Monday expiry moved forward may land on `on`
    while day <= short_end + timedelta(days=3):
        if day.weekday() in weekdays:
            moved = _move_off_holiday(day, cal)
            if on <= moved <= short_end:
                found.add(moved)
        day += timedelta(days=1)
    return sorted(found)


def first_expiry_on_or_after(
    underlying: str,
    on: date,
    dte: int,
    *,
    calendar: MarketCalendar | None = None,
    recorded: Collection[OptionContract] = (),
) -> date:
    """The first expiry listed on `on` that is at least `dte` calendar days away.

    Raises `Rejected("no_listed_expiry")` when none is listed (only possible with a
    `recorded` chain that ends earlier).
    """
    if dte < 0:
        raise Rejected("invalid_dte", f"dte must be >= 0, got {dte}")
    target = on + timedelta(days=dte)
    horizon = dte + _MONTHLY_SEARCH_DAYS
    own = _recorded_for(underlying, recorded)
    if own:
        horizon = max([dte, *((c.expiry - on).days for c in own)])
    for expiry in listed_expiries(underlying, on, horizon, calendar=calendar, recorded=recorded):
        if expiry >= target:
            return expiry
    raise Rejected(
        "no_listed_expiry",
        f"no {underlying} expiry listed on {on.isoformat()} at or after {target.isoformat()}",
    )


def listed_strikes(
    underlying: str,
    spot: float,
    on: date,
    *,
    properties: SymbolProperties | None = None,
    expiry: date | None = None,
    recorded: Collection[OptionContract] = (),
) -> list[float]:
    """Strikes listed for `underlying` around `spot`, ascending.

    By rule: `strike_grid` of the underlying's `properties` (the default properties if
    none are given) within ±`STRIKE_WIDTH` of spot; the rule does not depend on `on`.
    With `recorded` contracts: exactly their strikes (for `expiry`, if given, and for
    expiries on or after `on`).
    """
    own = _recorded_for(underlying, recorded)
    if own:
        return sorted(
            {c.strike for c in own if c.expiry >= on and (expiry is None or c.expiry == expiry)}
        )
    props = properties or SymbolProperties(underlying.upper())
    return strike_grid(props, spot, STRIKE_WIDTH)


def listed_contracts(
    underlying: str,
    spot: float,
    on: date,
    horizon_days: int,
    *,
    properties: SymbolProperties | None = None,
    calendar: MarketCalendar | None = None,
    recorded: Collection[OptionContract] = (),
) -> list[OptionContract]:
    """Every contract listed on `on` with expiry within `horizon_days`: calls and puts.

    With `recorded` contracts for `underlying`: exactly those (in the expiry window).
    Ordered by expiry, strike, then call before put.
    """
    own = _recorded_for(underlying, recorded)
    last = on + timedelta(days=horizon_days)
    if own:
        chosen = [c for c in own if on <= c.expiry <= last]
        return sorted(chosen, key=_contract_order)
    strikes = listed_strikes(underlying, spot, on, properties=properties)
    name = underlying.upper()
    return [
        OptionContract(name, expiry, strike, right)
        for expiry in listed_expiries(underlying, on, horizon_days, calendar=calendar)
        for strike in strikes
        for right in (Right.CALL, Right.PUT)
    ]


def _contract_order(contract: OptionContract) -> tuple[date, float, int]:
    return contract.expiry, contract.strike, 0 if contract.right is Right.CALL else 1


def _recorded_for(underlying: str, recorded: Collection[OptionContract]) -> list[OptionContract]:
    name = underlying.upper()
    return [c for c in recorded if c.underlying.upper() == name]


def _monthlies(first: date, last: date, calendar: MarketCalendar) -> list[date]:
    out: list[date] = []
    year, month = first.year, first.month
    while date(year, month, 1) <= last:
        expiry = _move_off_holiday(third_friday(year, month), calendar)
        if first <= expiry <= last:
            out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _move_off_holiday(day: date, calendar: MarketCalendar) -> date:
    step = timedelta(days=1 if day.weekday() == MONDAY else -1)
    moved = day
    while not calendar.is_session(moved):
        moved += step
    return moved


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())
