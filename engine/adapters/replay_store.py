"""The bundled Parquet files, loaded once into per-symbol numpy arrays for as-of lookups.

Times are int64 microseconds since the epoch (UTC), like the Parquet `ts` columns. Each
row gets a *visible* time, the first instant a replay may show it:

- a minute bar (stamped at its open) at `ts + 1 minute`;
- a daily bar (stamped with its session date at 00:00 UTC, a date label) at that
  session's close from the calendar (13:00 ET on a half day);
- a recorded option quote bar (stamped at its open) at `ts + 1 minute`.

Visible times rise with `ts` within a series, so "what is visible at `as_of`" is one
`numpy.searchsorted`. Nothing here filters a DataFrame per call.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.calendar import NEW_YORK, MarketCalendar
from engine.marketdata import Bar, OptionContract, Right, Timeframe

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_US = 60_000_000
PRICE_DECIMALS = 4
_ET = str(NEW_YORK)
_BAR_COLUMNS = ("open", "high", "low", "close")


def to_us(t: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    return (t - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=int(us))


@dataclass(frozen=True, slots=True, eq=False)
class BarSeries:
    """One symbol's bars of one timeframe, oldest first.

    `day` is the trading date of each bar as a proleptic ordinal (`date.toordinal()`):
    the New York date for minute bars, the label date for daily bars. `rth` marks minute
    bars that open inside regular hours [session open, session close).
    """

    symbol: str
    timeframe: Timeframe
    ts: I64
    visible: I64
    day: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    rth: BoolArray

    def __len__(self) -> int:
        return len(self.ts)

    def count_visible(self, as_of_us: int) -> int:
        """How many bars (a prefix of the series) are visible at `as_of_us`."""
        return int(np.searchsorted(self.visible, as_of_us, side="right"))

    def latest(self, as_of_us: int) -> tuple[int, float, int] | None:
        """(visible time, close, day) of the latest bar visible at `as_of_us`, if any."""
        i = self.count_visible(as_of_us) - 1
        if i < 0:
            return None
        return int(self.visible[i]), float(self.close[i]), int(self.day[i])

    def window(self, start_us: int, end_us: int, as_of_us: int) -> tuple[int, int]:
        """Index range [lo, hi) of bars with start <= ts < end that are visible at as_of."""
        lo = int(np.searchsorted(self.ts, start_us, side="left"))
        hi = int(np.searchsorted(self.ts, end_us, side="left"))
        return lo, max(lo, min(hi, self.count_visible(as_of_us)))

    def bar(self, i: int) -> Bar:
        """Row `i` as a `Bar` message."""
        return Bar(
            symbol=self.symbol,
            ts=from_us(int(self.ts[i])),
            open=float(self.open[i]),
            high=float(self.high[i]),
            low=float(self.low[i]),
            close=float(self.close[i]),
            volume=int(self.volume[i]),
        )


@dataclass(frozen=True, slots=True, eq=False)
class QuoteSeries:
    """One contract's two-sided recorded quote bars (both bid and ask present), oldest first."""

    ts: I64
    visible: I64
    day: I64
    bid: F64
    ask: F64

    def count_visible(self, as_of_us: int) -> int:
        return int(np.searchsorted(self.visible, as_of_us, side="right"))


@dataclass(frozen=True, slots=True)
class RecordedChains:
    """Recorded option quotes: the contracts quoted per (underlying, day) and their series.

    `listed` holds every contract with at least one quote bar on that New York date (one
    side may be empty); `series` only the bars with both sides, so a contract quoted
    one-sided all day is listed but has no series.
    """

    listed: dict[tuple[str, int], tuple[OptionContract, ...]]
    series: dict[OptionContract, QuoteSeries]


def load_minute_bars(
    path: Path, symbols: Collection[str], sessions: Collection[date], calendar: MarketCalendar
) -> dict[str, BarSeries]:
    """Minute bars of `symbols` on the New York dates `sessions`, keyed by symbol."""
    frame = (
        pl.scan_parquet(path)
        .filter(pl.col("symbol").is_in(list(symbols)))
        .with_columns(_et_day("ts").alias("day"))
        .filter(pl.col("day").is_in(list(sessions)))
        .collect()
    )
    out: dict[str, BarSeries] = {}
    for (symbol,), part in frame.partition_by("symbol", as_dict=True, maintain_order=True).items():
        ts = _epoch_us(part, "ts")
        day = _ordinals(part["day"])
        out[str(symbol)] = _series(
            symbol=str(symbol),
            timeframe=Timeframe.MINUTE,
            part=part,
            ts=ts,
            visible=ts + MINUTE_US,
            day=day,
            rth=_rth(ts, day, calendar),
        )
    return out


def load_daily_bars(
    path: Path, symbols: Collection[str], last_session: date, calendar: MarketCalendar
) -> dict[str, BarSeries]:
    """Daily bars of `symbols` up to and including `last_session`, keyed by symbol."""
    frame = (
        pl.scan_parquet(path)
        .filter(pl.col("symbol").is_in(list(symbols)))
        .with_columns(pl.col("ts").dt.date().alias("day"))
        .filter(pl.col("day") <= last_session)
        .collect()
    )
    closes: dict[date, int] = {}
    out: dict[str, BarSeries] = {}
    for (symbol,), part in frame.partition_by("symbol", as_dict=True, maintain_order=True).items():
        days: list[date] = part["day"].to_list()
        for d in days:
            if d not in closes:
                closes[d] = to_us(calendar.session_close(d))
        visible = np.array([closes[d] for d in days], dtype=np.int64)
        out[str(symbol)] = _series(
            symbol=str(symbol),
            timeframe=Timeframe.DAY,
            part=part,
            ts=_epoch_us(part, "ts"),
            visible=visible,
            day=_ordinals(part["day"]),
            rth=np.ones(len(days), dtype=np.bool_),
        )
    return out


def load_option_quotes(
    path: Path, underlyings: Collection[str], sessions: Collection[date]
) -> RecordedChains:
    """Recorded option quote bars of `underlyings` on the New York dates `sessions`."""
    keys = ["underlying", "expiry", "right", "strike"]
    frame = (
        pl.scan_parquet(path)
        .filter(pl.col("underlying").is_in(list(underlyings)))
        .with_columns(_et_day("ts").alias("day"))
        .filter(pl.col("day").is_in(list(sessions)))
        .collect()
    )
    listed: dict[tuple[str, int], tuple[OptionContract, ...]] = {}
    for (underlying, day), part in frame.group_by("underlying", "day", maintain_order=True):
        contracts = part.select(keys).unique(maintain_order=True).iter_rows()
        listed[(str(underlying), _as_date(day).toordinal())] = tuple(
            _contract(*row) for row in contracts
        )
    two_sided = frame.filter(pl.col("bid_close").is_not_null() & pl.col("ask_close").is_not_null())
    return RecordedChains(listed=listed, series=_quote_series(two_sided, keys))


def _quote_series(frame: pl.DataFrame, keys: list[str]) -> dict[OptionContract, QuoteSeries]:
    starts = (
        frame.with_row_index("row")
        .group_by(keys, maintain_order=True)
        .agg(pl.col("row").first().alias("first"), pl.len().alias("rows"))
    )
    ts = _epoch_us(frame, "ts")
    day = _ordinals(frame["day"])
    bid, ask = _prices(frame["bid_close"]), _prices(frame["ask_close"])
    series: dict[OptionContract, QuoteSeries] = {}
    for underlying, expiry, right, strike, first, rows in starts.iter_rows():
        part = slice(first, first + rows)
        series[_contract(underlying, expiry, right, strike)] = QuoteSeries(
            ts=ts[part], visible=ts[part] + MINUTE_US, day=day[part], bid=bid[part], ask=ask[part]
        )
    return series


def _contract(underlying: str, expiry: date, right: str, strike: float) -> OptionContract:
    return OptionContract(
        underlying=underlying,
        expiry=expiry,
        strike=float(strike),
        right=Right.CALL if right == "C" else Right.PUT,
    )


def _series(
    *,
    symbol: str,
    timeframe: Timeframe,
    part: pl.DataFrame,
    ts: I64,
    visible: I64,
    day: I64,
    rth: BoolArray,
) -> BarSeries:
    o, h, lo, c = (_prices(part[name]) for name in _BAR_COLUMNS)
    return BarSeries(
        symbol=symbol,
        timeframe=timeframe,
        ts=ts,
        visible=visible,
        day=day,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=part["volume"].to_numpy().astype(np.int64),
        rth=rth,
    )


def _prices(column: pl.Series) -> F64:
    # Lean stores prices as integers x 10,000; the Parquet files hold them divided by
    # 10,000 as float64 (22.790000000000003). Rounding to 4 decimals restores the
    # source value exactly as the nearest float.
    return np.round(column.to_numpy().astype(np.float64), PRICE_DECIMALS)


def unique_inverse(values: I64) -> tuple[I64, I64]:
    """`np.unique(values, return_inverse=True)`, in one pass when `values` is already
    ascending (a symbol's bars are: no sort, no hashing of millions of values)."""
    if values.size == 0 or bool(np.all(values[1:] >= values[:-1])):
        change = np.ones(values.size, dtype=np.bool_)
        change[1:] = values[1:] != values[:-1]
        return values[change], np.cumsum(change) - 1
    found, index = np.unique(values, return_inverse=True)
    return found, index.astype(np.int64)


def _rth(ts: I64, day: I64, calendar: MarketCalendar) -> BoolArray:
    """Bars opening in [session open, session close) of their own day's session: each
    distinct day is looked up once, then every bar is compared at once."""
    days, index = unique_inverse(day)
    opens = np.full(len(days), np.iinfo(np.int64).max, dtype=np.int64)
    closes = np.full(len(days), np.iinfo(np.int64).min, dtype=np.int64)
    for i, ordinal in enumerate(days):
        session = date.fromordinal(int(ordinal))
        if calendar.is_session(session):
            opens[i] = to_us(calendar.session_open(session))
            closes[i] = to_us(calendar.session_close(session))
    mask: BoolArray = (ts >= opens[index]) & (ts < closes[index])
    return mask


def _et_day(column: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(_ET).dt.date()


def _epoch_us(frame: pl.DataFrame, column: str) -> I64:
    return frame[column].dt.epoch("us").to_numpy().astype(np.int64)


def _ordinals(days: pl.Series) -> I64:
    # polars dates count days from 1970-01-01; ordinals count from 0001-01-01.
    offset = date(1970, 1, 1).toordinal()
    return days.cast(pl.Int32).to_numpy().astype(np.int64) + offset


def _as_date(value: object) -> date:
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {value!r}")
    return value
