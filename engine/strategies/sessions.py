"""Regular-hours minute bars and the strategy timeframe's bars, per session (whole arrays).

A minute bar stamped at its open `t` is in regular hours when session open <= t < session
close (XNYS: 09:30-16:00 ET, 13:00 on a half day). Bars of `w` minutes are slots aligned
to each session's open (09:30, 09:30 + w, ...), stamped at the slot's open: open of the
first minute, highest high, lowest low, close of the last minute, summed volume. A slot
ends at min(open + w, session close); the slot that ends at the close is the session's
final slot. A slot without minute bars has no bar, and a bar exists only once complete:
its slot has ended by the data's `as_of_us`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np

from engine.calendar import MarketCalendar
from engine.strategies.base import F64, I64, MINUTE_US, BoolArray, MinuteBars

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, eq=False)
class SessionMinutes:
    """The regular-hours minute bars of a `MinuteBars`, each with its session's index into
    `opens` / `closes` (epoch microseconds of every session around the data)."""

    ts: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    session: I64
    opens: I64
    closes: I64


@dataclass(frozen=True, slots=True, eq=False)
class SessionTable:
    """Every session's open and close (epoch microseconds, ascending) of a calendar."""

    opens: I64
    closes: I64


@functools.lru_cache(maxsize=4)
def session_table(calendar: MarketCalendar) -> SessionTable:
    """The sessions of `calendar` as arrays (built once per calendar; read-only)."""
    days = calendar.sessions_between(calendar.start, calendar.end)
    opens = np.array([_to_us(calendar.session_open(d)) for d in days], dtype=np.int64)
    closes = np.array([_to_us(calendar.session_close(d)) for d in days], dtype=np.int64)
    opens.setflags(write=False)
    closes.setflags(write=False)
    return SessionTable(opens, closes)


def regular_hours(bars: MinuteBars, sessions: SessionTable) -> SessionMinutes:
    """The minute bars of `bars` inside regular hours, with their sessions."""
    ts = bars.ts_us
    opens, closes = sessions.opens, sessions.closes
    session = np.searchsorted(opens, ts, side="right") - 1
    keep = session >= 0
    keep[keep] = ts[keep] < closes[session[keep]]
    return SessionMinutes(
        ts=ts[keep],
        open=bars.open[keep],
        high=bars.high[keep],
        low=bars.low[keep],
        close=bars.close[keep],
        volume=bars.volume[keep],
        session=session[keep],
        opens=opens,
        closes=closes,
    )


@dataclass(frozen=True, slots=True, eq=False)
class TimeframeBars:
    """Complete bars of `width_us`, oldest first. `end` is the slot's end (when the bar is
    known), `first` / `final` mark a session's first bar present and the bar of its final
    slot, `last_minute` indexes the bar's last minute in `minutes`."""

    minutes: SessionMinutes
    width_us: int
    ts: I64
    end: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    session: I64
    first: BoolArray
    final: BoolArray
    last_minute: I64

    def __len__(self) -> int:
        return int(self.ts.size)


def timeframe_bars(minutes: SessionMinutes, width_minutes: int, as_of_us: int) -> TimeframeBars:
    """The regular-hours minute bars grouped into `width_minutes` slots per session;
    only the slots that have ended by `as_of_us`."""
    width = width_minutes * MINUTE_US
    start = minutes.opens[minutes.session]
    slot = start + (minutes.ts - start) // width * width
    firsts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]]) if slot.size else slot
    end = np.minimum(slot[firsts] + width, minutes.closes[minutes.session[firsts]])
    done = int(np.searchsorted(end, as_of_us, side="right"))
    firsts, end = firsts[:done], end[:done]
    cut = int(firsts[-1]) + _slot_length(slot, int(firsts[-1])) if done else 0
    lasts = (np.r_[firsts[1:], cut] - 1)[:done]
    session = minutes.session[firsts]
    return TimeframeBars(
        minutes=minutes,
        width_us=width,
        ts=slot[firsts],
        end=end,
        open=minutes.open[firsts],
        high=_reduce(np.maximum, minutes.high[:cut], firsts),
        low=_reduce(np.minimum, minutes.low[:cut], firsts),
        close=minutes.close[lasts],
        volume=_reduce(np.add, minutes.volume[:cut], firsts),
        session=session,
        first=np.r_[True, session[1:] != session[:-1]][:done],
        final=end == minutes.closes[session],
        last_minute=lasts,
    )


def _slot_length(slot: I64, first: int) -> int:
    """How many minute bars the slot starting at index `first` holds."""
    return int(np.searchsorted(slot, slot[first], side="right")) - first


def _reduce(op: np.ufunc, values: F64, firsts: I64) -> F64:
    if firsts.size == 0:
        return np.empty(0)
    out: F64 = op.reduceat(values, firsts)
    return out


def _to_us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
