"""Named rules that turn real minute bars into TradingView strategy alerts (for replays).

A replay posts alerts that a rule generated once from the bundled bars and that ship as a
file (data/alerts/). The rules here are pure: they read the arrays they are given and
return the alerts as dicts in TradingView's JSON alert format, deterministically.

Rule `ema-cross-5m` (long only):

1. Resampling. Only regular-hours minute bars count: a bar stamped at its open `t` is kept
   when session open <= t < session close (the XNYS calendar; 09:30-16:00 ET, 13:00 on a
   half day). They are grouped per session into 5-minute bars aligned to the session open
   (09:30, 09:35, ..., 15:55), each stamped at its open; a 5-minute bar's close is the
   close of its last minute bar. A 5-minute slot without minute bars has no bar.
2. Indicators. EMA(8) and EMA(21) of the 5-minute closes (`engine.indicators.ema`, TA-Lib
   seeding), over the whole regular-hours 5-minute series given, across sessions (never
   reset overnight). Both are NaN during the warm-up (the first 20 bars for EMA 21).
3. Crosses, as TradingView's `ta.crossover` / `ta.crossunder` on consecutive 5-minute bars
   of that series (so the first bar of a session compares with the previous session's
   last): golden cross at bar k when EMA8[k] > EMA21[k] and EMA8[k-1] <= EMA21[k-1]; death
   cross when EMA8[k] < EMA21[k] and EMA8[k-1] >= EMA21[k-1]. No cross involves a NaN.
4. Position, flat at the start. Flat and a golden cross: a long entry, except on the last
   5-minute bar of a session (it would be closed on the same bar). Long and a death cross:
   an exit. Long on the last 5-minute bar of a session (the last one present): a
   "session end" exit. So entries and exits alternate, every session ends flat, and a bar
   carries at most one alert (entry and exit of one bar would share a dedupe key).

Each alert carries `symbol`, `direction` (`{{strategy.order.action}}`: buy on an entry,
sell on an exit), `timeframe` "5" (`{{interval}}`), `timestamp` (`{{time}}`, the bar's
OPEN time, ISO 8601 with Z), `action` (entry/exit), `market_position` /
`prev_market_position` (long/flat, flat/long), `price` (the bar's close rounded to
`PRICE_DECIMALS`), `strategy`
(the rule's name) and `comment` (`{{strategy.order.comment}}`: golden cross, death cross
or session end). No `secret`: the sender adds it. An alert is due at its bar's close,
`timestamp` + 5 minutes (`alert_due_at`), when TradingView would send it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from engine.alerts import canonical_timeframe, parse_bar_time, timeframe_seconds
from engine.calendar import MarketCalendar, xnys_calendar
from engine.indicators import ema

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
AlertFields = dict[str, object]

EMA_CROSS_5M: Final = "ema-cross-5m"
FAST_PERIOD: Final = 8
SLOW_PERIOD: Final = 21
BAR_MINUTES: Final = 5
TIMEFRAME: Final = "5"  # TradingView's {{interval}} for 5 minutes
PRICE_DECIMALS: Final = 4  # the bundled bars' precision, as TradingView prints {{close}}
_MINUTE_US: Final = 60_000_000
_BAR_US: Final = BAR_MINUTES * _MINUTE_US
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FiveMinuteBars:
    """Regular-hours 5-minute bars, oldest first: `ts` the open (epoch microseconds, UTC),
    `close`, and `session_end` True on the last bar of each session."""

    ts: I64
    close: F64
    session_end: BoolArray


def five_minute_bars(
    ts_us: npt.ArrayLike, close: npt.ArrayLike, calendar: MarketCalendar | None = None
) -> FiveMinuteBars:
    """Resample minute bars (open times in epoch microseconds, strictly ascending) to the
    regular-hours 5-minute bars of rule step 1; bars outside regular hours are dropped."""
    ts, px = _minute_series(ts_us, close)
    if ts.size == 0:
        return FiveMinuteBars(np.empty(0, np.int64), np.empty(0), np.empty(0, np.bool_))
    opens, closes = _session_bounds(ts, calendar or xnys_calendar())
    session = np.searchsorted(opens, ts, side="right") - 1
    rth = session >= 0
    rth[rth] = ts[rth] < closes[session[rth]]
    ts, px, session = ts[rth], px[rth], session[rth]
    start = opens[session]
    bucket = start + (ts - start) // _BAR_US * _BAR_US
    last = np.ones(ts.size, dtype=np.bool_)
    last[:-1] = bucket[1:] != bucket[:-1]
    session_end = np.ones(int(last.sum()), dtype=np.bool_)
    kept = session[last]
    session_end[:-1] = kept[1:] != kept[:-1]
    return FiveMinuteBars(bucket[last], px[last], session_end)


def _minute_series(ts_us: npt.ArrayLike, close: npt.ArrayLike) -> tuple[I64, F64]:
    ts = np.asarray(ts_us, dtype=np.int64)
    px = np.asarray(close, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != px.shape:
        raise ValueError(f"ts and close must be 1-D and equally long, got {ts.shape}, {px.shape}")
    if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        raise ValueError("minute bar times must be strictly ascending")
    return ts, px


def _session_bounds(ts: I64, calendar: MarketCalendar) -> tuple[I64, I64]:
    """Open and close (epoch microseconds) of every session that may hold a bar of `ts`."""
    first, last = _to_datetime(int(ts[0])).date(), _to_datetime(int(ts[-1])).date()
    days = calendar.sessions_between(first - timedelta(days=1), last + timedelta(days=1))
    opens = np.array([_to_us(calendar.session_open(d)) for d in days], dtype=np.int64)
    closes = np.array([_to_us(calendar.session_close(d)) for d in days], dtype=np.int64)
    return opens, closes


def ema_crosses(close: npt.ArrayLike) -> tuple[BoolArray, BoolArray]:
    """(golden, death): EMA(8) crossing over / under EMA(21) of `close` (rule step 3)."""
    fast, slow = ema(close, FAST_PERIOD), ema(close, SLOW_PERIOD)
    golden = np.zeros(fast.size, dtype=np.bool_)
    death = np.zeros(fast.size, dtype=np.bool_)
    golden[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
    death[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
    return golden, death


def generate_alerts(
    ts_us: npt.ArrayLike,
    close: npt.ArrayLike,
    *,
    symbol: str,
    calendar: MarketCalendar | None = None,
) -> list[AlertFields]:
    """The alerts of rule `ema-cross-5m` over one symbol's minute bars (open times in
    epoch microseconds, strictly ascending; closes), oldest first. See the module
    docstring for the rule and the fields."""
    bars = five_minute_bars(ts_us, close, calendar)
    golden, death = ema_crosses(bars.close)
    alerts: list[AlertFields] = []
    long = False
    for k in range(bars.ts.size):
        comment = _exit_reason(bool(death[k]), bool(bars.session_end[k])) if long else None
        if not long and golden[k] and not bars.session_end[k]:
            comment = "golden cross"
        if comment is None:
            continue
        long = not long
        alerts.append(_alert(symbol, int(bars.ts[k]), float(bars.close[k]), long, comment))
    return alerts


def _exit_reason(death_cross: bool, session_end: bool) -> str | None:
    if death_cross:
        return "death cross"
    return "session end" if session_end else None


def _alert(symbol: str, ts_us: int, price: float, entry: bool, comment: str) -> AlertFields:
    return long_only_alert((symbol, TIMEFRAME, EMA_CROSS_5M), ts_us, price, entry, comment)


def long_only_alert(
    names: tuple[str, str, str], ts_us: int, price: float, entry: bool, comment: str
) -> AlertFields:
    """A long-only strategy's TradingView alert: `names` are (symbol, `{{interval}}`,
    strategy); `ts_us` the bar's open (epoch microseconds); `price` its close."""
    symbol, timeframe, strategy = names
    return {
        "symbol": symbol,
        "direction": "buy" if entry else "sell",
        "timeframe": timeframe,
        "timestamp": _to_datetime(ts_us).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "action": "entry" if entry else "exit",
        "market_position": "long" if entry else "flat",
        "prev_market_position": "flat" if entry else "long",
        "price": round(price, PRICE_DECIMALS),
        "strategy": strategy,
        "comment": comment,
    }


def render_alerts_json(alerts: Sequence[Mapping[str, object]]) -> str:
    """The alerts as the bundled file holds them: a JSON array, one alert per line, keys
    in the order given, ending with a newline (so two renderings are byte-identical)."""
    lines = ",\n".join("  " + json.dumps(dict(a), ensure_ascii=False) for a in alerts)
    return f"[\n{lines}\n]\n" if alerts else "[]\n"


def alert_due_at(fields: Mapping[str, object]) -> datetime:
    """When an alert is sent: its bar's close, `timestamp` (the open) + `timeframe`.

    Raises ValueError for a bad timestamp or a timeframe without a fixed length (months).
    """
    seconds = timeframe_seconds(canonical_timeframe(str(fields.get("timeframe", ""))))
    if seconds is None:
        raise ValueError(f"timeframe {fields.get('timeframe')!r} has no fixed length")
    return parse_bar_time(fields.get("timestamp")) + timedelta(seconds=seconds)


def _to_us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
