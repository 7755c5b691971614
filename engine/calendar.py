"""US equity market hours (NYSE, `XNYS`) from `exchange_calendars`.

Sessions, holidays and half days (13:00 ET closes) come from the exchange_calendars
XNYS calendar, pinned to a fixed range (1998-01-01 .. 2035-12-31 by default) so the
result never depends on the day the code runs. Every time in and out is aware UTC;
naive datetimes are refused (`engine.clock.ensure_utc`). Dates outside the range raise
`Rejected("outside_calendar")`.

Regular hours are the half-open interval [open, close). Extended hours on a session
day are [04:00 ET, close + 4 h): 04:00–20:00 ET on a normal day, 04:00–17:00 ET on a
half day, when the after-hours session also ends early.
"""

from __future__ import annotations

import bisect
import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import numpy.typing as npt

from engine.clock import ensure_utc
from engine.errors import Rejected

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR_START = date(1998, 1, 1)
CALENDAR_END = date(2035, 12, 31)
PRE_MARKET_OPEN = time(4, 0)
POST_MARKET_LENGTH = timedelta(hours=4)


class MarketCalendar:
    """NYSE sessions between `start` and `end`. Read-only once built.

    Building one takes a fraction of a second; share it (`xnys_calendar()`).
    """

    def __init__(self, start: date = CALENDAR_START, end: date = CALENDAR_END) -> None:
        cal = xcals.get_calendar("XNYS", start=start.isoformat(), end=end.isoformat())
        self.start = start
        self.end = end
        self._sessions: list[date] = [ts.date() for ts in cal.sessions]
        self._opens = _utc_datetimes(cal.opens_nanos)
        self._closes = _utc_datetimes(cal.closes_nanos)
        self._index = {d: i for i, d in enumerate(self._sessions)}

    def is_session(self, d: date) -> bool:
        """True when the exchange trades (regular hours) on date `d`."""
        self._check_date(d)
        return d in self._index

    def session_open(self, d: date) -> datetime:
        """Regular-session open of session `d` (UTC); `Rejected("not_a_session")` if closed."""
        return self._opens[self._session_index(d)]

    def session_close(self, d: date) -> datetime:
        """Regular-session close of session `d` (UTC): 16:00 ET, or 13:00 ET on a half day."""
        return self._closes[self._session_index(d)]

    def is_open(self, t: datetime, extended: bool = False) -> bool:
        """True when `t` is within regular hours, or pre/post-market hours if `extended`."""
        utc = self._check_time(t)
        i = bisect.bisect_right(self._opens, utc) - 1
        if i >= 0 and utc < self._closes[i]:
            return True
        if not extended:
            return False
        day = self.session_date(utc)
        if day not in self._index:
            return False
        start, stop = self.extended_hours(day)
        return start <= utc < stop

    def extended_hours(self, d: date) -> tuple[datetime, datetime]:
        """[start, stop) of pre-market through post-market on session `d` (UTC)."""
        close = self.session_close(d)
        start = datetime.combine(d, PRE_MARKET_OPEN, tzinfo=NEW_YORK).astimezone(UTC)
        return start, close + POST_MARKET_LENGTH

    def next_open(self, t: datetime) -> datetime:
        """The first regular open strictly after `t` (during a session: the next session's)."""
        utc = self._check_time(t)
        i = bisect.bisect_right(self._opens, utc)
        if i >= len(self._opens):
            raise Rejected("outside_calendar", f"no session opens after {utc.isoformat()}")
        return self._opens[i]

    def previous_close(self, t: datetime) -> datetime:
        """The last regular close at or before `t` (at a close instant: that close)."""
        utc = self._check_time(t)
        i = bisect.bisect_right(self._closes, utc) - 1
        if i < 0:
            raise Rejected("outside_calendar", f"no session closes by {utc.isoformat()}")
        return self._closes[i]

    def session_date(self, t: datetime) -> date:
        """The calendar date of `t` in New York: the trading date it belongs to, if any."""
        return ensure_utc(t).astimezone(NEW_YORK).date()

    def sessions_between(self, start: date, end: date) -> list[date]:
        """Sessions from `start` to `end`, both included; empty when `start > end`."""
        self._check_date(start)
        self._check_date(end)
        lo = bisect.bisect_left(self._sessions, start)
        hi = bisect.bisect_right(self._sessions, end)
        return self._sessions[lo:hi]

    def _session_index(self, d: date) -> int:
        self._check_date(d)
        i = self._index.get(d)
        if i is None:
            raise Rejected("not_a_session", f"{d.isoformat()} is not an XNYS session")
        return i

    def _check_date(self, d: date) -> None:
        if isinstance(d, datetime):
            raise Rejected("invalid_date", f"expected a date, got the datetime {d.isoformat()}")
        if not self.start <= d <= self.end:
            raise Rejected(
                "outside_calendar",
                f"{d.isoformat()} is outside {self.start.isoformat()}..{self.end.isoformat()}",
            )

    def _check_time(self, t: datetime) -> datetime:
        utc = ensure_utc(t)
        self._check_date(self.session_date(utc))
        return utc


def _utc_datetimes(nanos: npt.NDArray[np.int64]) -> list[datetime]:
    """Epoch nanoseconds (all whole seconds for XNYS) to aware UTC datetimes."""
    return [datetime.fromtimestamp(int(n) // 1_000_000_000, UTC) for n in nanos]


@functools.lru_cache(maxsize=1)
def xnys_calendar() -> MarketCalendar:
    """The shared NYSE calendar for the default range (built once; it is read-only)."""
    return MarketCalendar()


def session_close_at(calendar: MarketCalendar, now: datetime) -> datetime | None:
    """The close of the session `now` falls in (regular hours), or None outside one."""
    if not calendar.is_open(now):
        return None
    return calendar.session_close(calendar.session_date(now))
