"""The long-only position state machine over whole arrays, and the alerts it writes.

A strategy hands over `Signals` for its timeframe's bars: entry candidates and exit
reasons (in priority order). Then, without a loop over bars:

1. Session end (when `session_flat`): the bar of each session's final slot is an exit
   candidate ("session end", the lowest priority) and never an entry. A session whose
   final slot has no bar, once its close is known, gets a closing row there: stamped at
   the final slot's open, at the session's last close, carrying only that exit.
2. A bar that meets an exit reason is never an entry. The position is long after a bar
   when the last entry or exit candidate up to it was an entry (flat before the first):
   the forward fill of the last candidate's type. An entry alert is where the position
   turns long, an exit alert where it turns flat; its comment is the first exit reason
   that bar meets. So entries and exits alternate and a bar carries at most one alert.
3. Time stop (`max_hold_minutes`): a position still open on the first row whose open is
   at least that long after the entry bar's open is closed there ("time stop"), unless
   its own exit falls on that row. The strategy then stays flat until that own exit
   would have come: no new entry before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from engine.alert_rules import long_only_alert
from engine.strategies.base import F64, I64, MINUTE_US, Alert, BoolArray
from engine.strategies.sessions import TimeframeBars

SESSION_END: Final = "session end"
TIME_STOP: Final = "time stop"


@dataclass(frozen=True, slots=True, eq=False)
class Signals:
    """A strategy's candidates over its bars (arrays as long as the bars)."""

    entry: BoolArray
    entry_comment: str
    exits: tuple[tuple[str, BoolArray], ...]
    session_flat: bool = True
    max_hold_minutes: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class AlertRows:
    """The alerts as arrays, oldest first: bar open, bar end (when the alert is known),
    price, entry (True) or exit, comment."""

    ts: I64
    end: I64
    price: F64
    entry: BoolArray
    comment: tuple[str, ...]

    def since(self, after_us: int) -> AlertRows:
        """The alerts whose bar ended after `after_us`."""
        keep = self.end > after_us
        return AlertRows(
            self.ts[keep],
            self.end[keep],
            self.price[keep],
            self.entry[keep],
            tuple(c for c, k in zip(self.comment, keep, strict=True) if k),
        )

    def render(self, symbol: str, timeframe: str, strategy: str) -> list[Alert]:
        """The TradingView alert dicts (the fields and order of `engine.alert_rules`)."""
        names = (symbol, timeframe, strategy)
        return [
            _alert(names, int(t), float(p), bool(e), c)
            for t, p, e, c in zip(self.ts, self.price, self.entry, self.comment, strict=True)
        ]


@dataclass(frozen=True, slots=True, eq=False)
class _Rows:
    """The bars plus closing rows, with every candidate array aligned to them."""

    ts: I64
    end: I64
    close: F64
    entry: BoolArray
    exits: tuple[tuple[str, BoolArray], ...]


def alert_rows(bars: TimeframeBars, signals: Signals, as_of_us: int) -> AlertRows:
    """Run the state machine of the module docstring over `bars`."""
    rows = _with_session_end(bars, signals, as_of_us)
    exit_any = np.zeros(rows.ts.size, dtype=np.bool_)
    for _, mask in rows.exits:
        exit_any |= mask
    entry = rows.entry & ~exit_any
    long = forward_fill(entry, exit_any)
    was_long = np.r_[False, long[:-1]]
    opened, closed = np.flatnonzero(long & ~was_long), np.flatnonzero(was_long & ~long)
    comments = [_first_reason(rows.exits, int(k)) for k in closed]
    if signals.max_hold_minutes is not None:
        closed, comments = _time_stops(rows.ts, opened, closed, comments, signals.max_hold_minutes)
    return _merge(rows, opened, signals.entry_comment, closed, comments)


def forward_fill(on: BoolArray, off: BoolArray) -> BoolArray:
    """The type of the last candidate so far: True from an `on` bar up to (not including)
    the next `off` bar, False before any candidate; where both hold, `on` wins."""
    events = on | off
    index = np.where(events, np.arange(events.size), -1)
    last = np.maximum.accumulate(index) if index.size else index
    state: BoolArray = (last >= 0) & on[np.maximum(last, 0)]
    return state


def _with_session_end(bars: TimeframeBars, signals: Signals, as_of_us: int) -> _Rows:
    if not signals.session_flat:
        return _Rows(bars.ts, bars.end, bars.close, signals.entry, signals.exits)
    extra = _closing_rows(bars, as_of_us)
    n_extra = extra.size
    all_ts = np.r_[bars.ts, _final_slot_open(bars, extra)]
    order = np.argsort(all_ts, kind="stable")
    pad = np.zeros(n_extra, dtype=np.bool_)
    session_end = np.r_[bars.final, np.ones(n_extra, dtype=np.bool_)][order]
    exits = tuple((c, np.r_[m, pad][order]) for c, m in signals.exits)
    return _Rows(
        ts=all_ts[order],
        end=np.r_[bars.end, bars.minutes.closes[extra]][order],
        close=np.r_[bars.close, _last_close(bars, extra)][order],
        entry=np.r_[signals.entry & ~bars.final, pad][order],
        exits=(*exits, (SESSION_END, session_end)),
    )


def _closing_rows(bars: TimeframeBars, as_of_us: int) -> I64:
    """Sessions with bars, closed by `as_of_us`, whose final slot has no bar."""
    sessions = np.unique(bars.session)
    closed = sessions[bars.minutes.closes[sessions] <= as_of_us]
    with_final = np.unique(bars.session[bars.final])
    missing: I64 = np.setdiff1d(closed, with_final, assume_unique=True)
    return missing


def _final_slot_open(bars: TimeframeBars, sessions: I64) -> I64:
    opens, closes = bars.minutes.opens[sessions], bars.minutes.closes[sessions]
    slot: I64 = opens + (closes - opens - MINUTE_US) // bars.width_us * bars.width_us
    return slot


def _last_close(bars: TimeframeBars, sessions: I64) -> F64:
    last = np.searchsorted(bars.session, sessions, side="right") - 1
    close: F64 = bars.close[last]
    return close


def _first_reason(exits: tuple[tuple[str, BoolArray], ...], k: int) -> str:
    return next(comment for comment, mask in exits if mask[k])


def _time_stops(
    ts: I64, opened: I64, closed: I64, comments: list[str], hold_minutes: int
) -> tuple[I64, list[str]]:
    """Each position's exit moved to its time stop when that comes first; a position
    open at the end of the data may get one too."""
    own = np.r_[closed, np.full(opened.size - closed.size, ts.size, dtype=np.int64)]
    stop = np.searchsorted(ts, ts[opened] + hold_minutes * MINUTE_US, side="left")
    early = stop < own
    exits = np.where(early, stop, own)
    reasons = [TIME_STOP if e else c for e, c in zip(early, [*comments, ""], strict=False)]
    keep = exits < ts.size
    return exits[keep], [r for r, k in zip(reasons, keep, strict=False) if k]


def _merge(
    rows: _Rows, opened: I64, entry_comment: str, closed: I64, exit_comments: list[str]
) -> AlertRows:
    at = np.r_[opened, closed]
    order = np.argsort(at, kind="stable")
    at = at[order]
    comments = [entry_comment] * opened.size + exit_comments
    return AlertRows(
        ts=rows.ts[at],
        end=rows.end[at],
        price=rows.close[at],
        entry=np.r_[np.ones(opened.size, np.bool_), np.zeros(closed.size, np.bool_)][order],
        comment=tuple(comments[i] for i in order),
    )


def _alert(
    names: tuple[str, str, str], ts_us: int, price: float, entry: bool, comment: str
) -> Alert:
    return long_only_alert(names, ts_us, price, entry, comment)
