"""Bars of a signal's timeframe, built from regular-hours minute bars or daily bars.

Intraday timeframes (below one day) group minute bars into slots aligned to each
session's open (09:30, 09:35, ... for 5 minutes; 09:30, 10:30, ... for an hour, as
TradingView draws US equities); a session's last slot ends at its close. Daily and longer
timeframes group daily bars by ISO week or calendar month (`1d` keeps them as they are).
A grouped bar is stamped at its slot's open: open of its first bar, close of its last,
highest high, lowest low, summed volume; a slot without bars has no bar.

Only complete bars are returned: an intraday slot once `as_of` reaches its end, a week or
month once `as_of` is past its New York date range. A count above one on a daily or
longer unit (`2d`, `2w`) uses its unit's bars.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import date, datetime, timedelta

from engine.calendar import MarketCalendar
from engine.clock import ensure_utc
from engine.errors import Rejected
from engine.marketdata import Bar

DAY_SECONDS = 86_400


def timeframe_minutes(timeframe: str) -> int | None:
    """Minutes per bar of a canonical timeframe below one day (seconds round up to one
    minute); None for daily and longer ones."""
    unit, count = _split(timeframe)
    seconds = count * {"s": 1, "m": 60, "h": 3600}.get(unit, DAY_SECONDS)
    if seconds >= DAY_SECONDS:
        return None
    return max(1, seconds // 60)


def timeframe_bars(
    timeframe: str,
    bars_1m: Sequence[Bar],
    bars_1d: Sequence[Bar],
    calendar: MarketCalendar,
    as_of: datetime,
) -> tuple[Bar, ...]:
    """The complete bars of `timeframe` (canonical, `engine.alerts.canonical_timeframe`)
    visible at `as_of`: intraday from `bars_1m` (regular hours only), else from `bars_1d`."""
    minutes = timeframe_minutes(timeframe)
    if minutes is not None:
        return intraday_bars(bars_1m, minutes, calendar, as_of)
    unit, _ = _split(timeframe)
    return period_bars(bars_1d, unit, calendar.session_date(as_of))


def intraday_bars(
    bars_1m: Sequence[Bar], minutes: int, calendar: MarketCalendar, as_of: datetime
) -> tuple[Bar, ...]:
    """Minute bars (oldest first, inside regular hours) grouped into `minutes`-long slots
    from each session's open; only slots that have ended by `as_of`."""
    utc = ensure_utc(as_of)
    width = timedelta(minutes=minutes)
    bounds: dict[date, tuple[datetime, datetime]] = {}
    groups: list[tuple[datetime, datetime, list[Bar]]] = []
    for bar in bars_1m:
        day = calendar.session_date(bar.ts)
        if day not in bounds:
            bounds[day] = (calendar.session_open(day), calendar.session_close(day))
        opens, closes = bounds[day]
        slot = opens + (bar.ts - opens) // width * width
        if groups and groups[-1][0] == slot:
            groups[-1][2].append(bar)
        else:
            groups.append((slot, min(slot + width, closes), [bar]))
    return tuple(_merge(slot, parts) for slot, end, parts in groups if end <= utc)


def period_bars(bars_1d: Sequence[Bar], unit: str, today: date) -> tuple[Bar, ...]:
    """Daily bars as they are (`d`), or grouped by ISO week (`w`) or month (`mo`); a group
    that holds `today` is still open and left out."""
    if unit == "d":
        return tuple(b for b in bars_1d if b.ts.date() < today)
    key = _PERIOD_KEYS.get(unit)
    if key is None:
        raise Rejected("unknown_timeframe", f"no bars for unit {unit!r}")
    groups: list[tuple[Hashable, list[Bar]]] = []
    for bar in bars_1d:
        k = key(bar.ts.date())
        if groups and groups[-1][0] == k:
            groups[-1][1].append(bar)
        else:
            groups.append((k, [bar]))
    return tuple(_merge(parts[0].ts, parts) for k, parts in groups if k != key(today))


_PERIOD_KEYS: dict[str, Callable[[date], Hashable]] = {
    "w": lambda d: d.isocalendar()[:2],
    "mo": lambda d: (d.year, d.month),
}


def _merge(stamp: datetime, parts: Sequence[Bar]) -> Bar:
    return Bar(
        symbol=parts[0].symbol,
        ts=stamp,
        open=parts[0].open,
        high=max(b.high for b in parts),
        low=min(b.low for b in parts),
        close=parts[-1].close,
        volume=sum(b.volume for b in parts),
    )


def _split(timeframe: str) -> tuple[str, int]:
    """(unit, count) of a canonical timeframe such as `5m`, `1h`, `1d`, `1mo`."""
    digits = len(timeframe) - len(timeframe.lstrip("0123456789"))
    count, unit = timeframe[:digits], timeframe[digits:]
    if not count or int(count) < 1 or unit not in ("s", "m", "h", "d", "w", "mo"):
        raise Rejected("unknown_timeframe", f"{timeframe!r} is not a canonical timeframe")
    return unit, int(count)
