"""Vendor timestamps and bar visibility for the market-data adapters.

Tandem's convention (see `engine.marketdata`): a minute bar is stamped at its open and
visible at open + 1 minute; a daily bar is stamped at its session date, 00:00 UTC, and
visible after that session's close. Without an exchange calendar the close is taken as
16:00 New York time: exact on regular days, a few hours late (never early) on half days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.marketdata import Timeframe

NEW_YORK = ZoneInfo("America/New_York")
_REGULAR_CLOSE = time(16, 0)


def parse_utc(text: str) -> datetime:
    """An RFC-3339 timestamp (`Z` or offset, up to nanoseconds) as aware UTC."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return parsed.astimezone(UTC)


def session_ts(session: date) -> datetime:
    """The stamp of a daily bar: its session date at 00:00 UTC."""
    return datetime.combine(session, time(0), tzinfo=UTC)


def bar_visible_at(ts: datetime, timeframe: Timeframe) -> datetime:
    """When a bar stamped `ts` may be seen: its close."""
    if timeframe is Timeframe.MINUTE:
        return ts + timedelta(minutes=1)
    return datetime.combine(ts.date(), _REGULAR_CLOSE, tzinfo=NEW_YORK).astimezone(UTC)


def rfc3339(t: datetime) -> str:
    """`t` in UTC as `YYYY-MM-DDTHH:MM:SSZ` (sub-second part dropped)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
