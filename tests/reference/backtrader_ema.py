"""An EMA fast/slow cross backtest in backtrader, independent of Tandem's engine.

It is the reference for the parity test and the benchmark of issue 8: the same rule,
run by another library's event loop, broker and EMA.

The rule (long only, one symbol):

1. Resampling (polars, before backtrader). Regular-hours minute bars (stamped at their
   open, UTC) are grouped per session into `timeframe_minutes` slots aligned to the
   session open, 09:30 New York time; a slot never spans two sessions. A resampled bar is
   stamped at its slot's open: open of its first minute, highest high, lowest low, close
   of its last minute, summed volume. A slot without minute bars has no bar.
2. Indicators: backtrader's own `bt.indicators.EMA` of the resampled closes, over the
   whole series (never reset overnight). backtrader seeds an EMA with the simple mean of
   its first `period` values and then applies `prev * (1 - a) + x * a`, a = 2 / (period
   + 1), as TA-Lib does (`backtrader_ema` exposes it so a test can check exactly that).
3. Crosses on consecutive resampled bars k-1, k: golden when fast[k] > slow[k] and
   fast[k-1] <= slow[k-1]; death when fast[k] < slow[k] and fast[k-1] >= slow[k-1]
   (computed by hand: `bt.indicators.CrossOver` skips zero differences, a different rule).
4. Flat and a golden cross, unless bar k is the last resampled bar of its session: buy
   `floor(budget / close_k / lot) * lot` shares (nothing if 0). Long and a death cross:
   close the whole position. No session-end exit: positions are held overnight.
5. Market orders fill at the open of the next minute bar after bar k closes (the next
   session's first minute when k ends a session). No commission, no slippage, no cheat
   on open; cash (1e9) never constrains.

How backtrader runs it: two feeds, the minute bars (data0, the clock and the traded
data) and the resampled bars (data1, the signal). backtrader aligns feeds by their
datetime, so each resampled bar is given the datetime of its LAST minute bar: it arrives
in the same cycle as that minute, when the whole bar is known, never earlier. The
strategy acts when data1 has a new bar and sends a market order on data0; backtrader's
broker fills it in the next cycle at data0's open, i.e. the next minute bar's open. Every
data1 datetime is a data0 datetime, so every cycle advances data0 and no fill can use a
stale minute. An order sent on the very last minute of the data never fills.

`bars_per_s` is the number of minute bars over the seconds `cerebro.run()` takes
(`time.perf_counter`), feed loading (preload) included; observers are off
(`stdstats=False`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import backtrader as bt
import numpy as np
import numpy.typing as npt
import polars as pl

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

NEW_YORK = "America/New_York"
SESSION_OPEN_MINUTE = 9 * 60 + 30
START_CASH = 1e9
# backtrader's date2num counts days from 0001-01-01 (day 1); 1970-01-01 is day 719163.
EPOCH_ORDINAL = 719_163.0
MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class RefTrade:
    """One closed long trade: fills of the entry and of the exit, and backtrader's P&L."""

    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    quantity: int
    pnl: float


@dataclass(frozen=True)
class RefEntry:
    """The entry fill of a position still open at the end of the data."""

    entry_time: datetime
    entry_price: float
    quantity: int


@dataclass(frozen=True)
class ReferenceResult:
    """Closed trades in order, the open position if any, realised P&L, and speed."""

    trades: list[RefTrade]
    open_trade: RefEntry | None
    pnl: float
    bars_per_s: float


def resample_session_bars(bars: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """Regular-hours minute bars grouped into `minutes`-long slots from each session's
    09:30 ET open. Columns: ts (slot open, UTC), last_ts (open of its last minute bar),
    open, high, low, close, volume, last_of_session (the last bar of its session)."""
    local = pl.col("ts").dt.convert_time_zone(NEW_YORK)
    since_open = local.dt.hour().cast(pl.Int64) * 60 + local.dt.minute() - SESSION_OPEN_MINUTE
    grouped = (
        bars.sort("ts")
        .with_columns(
            session=local.dt.date(),
            slot=pl.col("ts") - pl.duration(minutes=since_open.mod(minutes)),
        )
        .group_by("session", "slot", maintain_order=True)
        .agg(
            last_ts=pl.col("ts").last(),
            open=pl.col("open").first(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").last(),
            volume=pl.col("volume").sum(),
        )
    )
    return grouped.select(
        pl.col("slot").alias("ts"),
        "last_ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        last_of_session=pl.col("slot") == pl.col("slot").max().over("session"),
    )


def backtrader_ema_cross(
    bars: pl.DataFrame,
    *,
    fast: int = 8,
    slow: int = 21,
    timeframe_minutes: int = 5,
    budget: float = 500.0,
    lot: int = 1,
) -> ReferenceResult:
    """Run the EMA `fast`/`slow` cross rule (module docstring) in backtrader on ONE
    symbol's regular-hours minute bars (ts UTC at the bar's open, open, high, low, close,
    volume)."""
    if "symbol" in bars.columns and bars["symbol"].n_unique() > 1:
        raise ValueError("backtrader_ema_cross takes the bars of one symbol")
    minute = bars.sort("ts")
    resampled = resample_session_bars(minute, timeframe_minutes)
    minute_nums = _bt_datenums(minute["ts"])
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=False)
    cerebro.broker.setcash(START_CASH)
    cerebro.broker.setcommission(commission=0.0)
    cerebro.adddata(_feed(minute, minute_nums, 1))
    cerebro.adddata(_feed(resampled, _bt_datenums(resampled["last_ts"]), timeframe_minutes))
    cerebro.addstrategy(_EmaCross, fast=fast, slow=slow, budget=budget, lot=lot)
    started = time.perf_counter()
    strategy: _EmaCross = cerebro.run()[0]
    elapsed = time.perf_counter() - started
    to_time = _FillClock(minute_nums, minute["ts"])
    trades = [_ref_trade(t, to_time) for t in strategy.closed]
    open_trade = None
    if strategy.entry is not None:
        num, price, qty = strategy.entry
        open_trade = RefEntry(to_time(num), price, qty)
    return ReferenceResult(
        trades=trades,
        open_trade=open_trade,
        pnl=math.fsum(t.pnl for t in trades),
        bars_per_s=minute.height / elapsed if elapsed > 0 else math.inf,
    )


def backtrader_ema(closes: npt.ArrayLike, period: int) -> F64:
    """backtrader's `bt.indicators.EMA` of `closes`, NaN during its warm-up (the first
    `period - 1` values)."""
    values = np.asarray(closes, dtype=np.float64)
    stamps = pl.Series(
        "ts", np.arange(values.size, dtype=np.int64) * 60_000_000, dtype=pl.Datetime("us", "UTC")
    )
    frame = pl.DataFrame({"ts": stamps, "open": values, "high": values, "low": values})
    frame = frame.with_columns(close=pl.col("open"), volume=pl.lit(0, pl.Int64))
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(_feed(frame, _bt_datenums(frame["ts"]), 1))
    cerebro.addstrategy(_EmaRecorder, period=period)
    strategy: _EmaRecorder = cerebro.run()[0]
    return np.asarray(strategy.ema.array[: values.size], dtype=np.float64)


class _ArrayFeed(bt.feed.DataBase):  # type: ignore[misc]
    """A feed served from NumPy arrays: datetime (backtrader day numbers), prices,
    volume and `last_of_session` (1.0 on a session's last bar)."""

    lines = ("last_of_session",)
    params = (("arrays", None),)

    def start(self) -> None:
        super().start()
        arrays: dict[str, F64] = self.p.arrays
        self._row = -1
        self._rows = len(arrays["datetime"])
        self._columns = [(getattr(self.lines, name), col.tolist()) for name, col in arrays.items()]

    def _load(self) -> bool:
        self._row += 1
        if self._row >= self._rows:
            return False
        for line, column in self._columns:
            line[0] = column[self._row]
        return True


class _EmaCross(bt.Strategy):  # type: ignore[misc]
    """Signals on data1 (resampled), market orders on data0 (minutes)."""

    params = (("fast", 8), ("slow", 21), ("budget", 500.0), ("lot", 1))

    def __init__(self) -> None:
        self.minute, self.signal = self.datas[0], self.datas[1]
        self.fast = bt.indicators.EMA(self.signal.close, period=self.p.fast)
        self.slow = bt.indicators.EMA(self.signal.close, period=self.p.slow)
        self.seen = 0
        self.entry: tuple[float, float, int] | None = None
        self.exit: tuple[float, float] | None = None
        self.closed: list[tuple[tuple[float, float, int], tuple[float, float], float]] = []

    def next(self) -> None:
        count = len(self.signal)
        if count == self.seen:
            return
        self.seen = count
        if count <= max(self.p.fast, self.p.slow):  # bar k-1 is still in the warm-up
            return
        above, was_above = self.fast[0] > self.slow[0], self.fast[-1] > self.slow[-1]
        below, was_below = self.fast[0] < self.slow[0], self.fast[-1] < self.slow[-1]
        held = self.getposition(self.minute).size
        if above and not was_above and held == 0 and not self.signal.last_of_session[0]:
            size = math.floor(self.p.budget / self.signal.close[0] / self.p.lot) * self.p.lot
            if size > 0:
                self.buy(data=self.minute, size=size)
        elif below and not was_below and held > 0:
            self.close(data=self.minute)

    def notify_order(self, order: Any) -> None:
        if order.status != order.Completed:
            return
        fill = order.executed
        # The execution bit's price is the bar's open as is; `executed.price` is a
        # size-weighted mean that can be one ulp off it.
        price = fill.exbits[-1].price
        if order.isbuy():
            self.entry = (fill.dt, price, int(fill.size))
        else:
            self.exit = (fill.dt, price)

    def notify_trade(self, trade: Any) -> None:
        if trade.isclosed and self.entry is not None and self.exit is not None:
            self.closed.append((self.entry, self.exit, trade.pnl))
            self.entry = self.exit = None


class _EmaRecorder(bt.Strategy):  # type: ignore[misc]
    params = (("period", 8),)

    def __init__(self) -> None:
        self.ema = bt.indicators.EMA(self.data.close, period=self.p.period)


class _FillClock:
    """Maps a backtrader fill datetime (day number) back to its minute bar's UTC time."""

    def __init__(self, nums: F64, stamps: pl.Series) -> None:
        self._nums = nums
        self._stamps = stamps.to_list()

    def __call__(self, num: float) -> datetime:
        i = int(np.searchsorted(self._nums, num))
        if i >= self._nums.size or self._nums[i] != num:
            raise ValueError(f"fill at {num} is not at a minute bar")
        stamp: datetime = self._stamps[i]
        return stamp.astimezone(UTC)


def _ref_trade(
    closed: tuple[tuple[float, float, int], tuple[float, float], float], to_time: _FillClock
) -> RefTrade:
    (entry_num, entry_price, qty), (exit_num, exit_price), pnl = closed
    return RefTrade(to_time(entry_num), entry_price, to_time(exit_num), exit_price, qty, pnl)


def _bt_datenums(stamps: pl.Series) -> F64:
    """UTC timestamps as backtrader's float day numbers (`bt.date2num` of naive UTC)."""
    micros: I64 = stamps.dt.convert_time_zone("UTC").dt.epoch("us").to_numpy()
    return EPOCH_ORDINAL + micros / MICROS_PER_DAY


def _feed(frame: pl.DataFrame, nums: F64, minutes: int) -> _ArrayFeed:
    arrays = {"datetime": nums}
    for name in ("open", "high", "low", "close", "volume"):
        arrays[name] = frame[name].cast(pl.Float64).to_numpy()
    last = frame["last_of_session"] if "last_of_session" in frame.columns else None
    arrays["last_of_session"] = (
        last.cast(pl.Float64).to_numpy() if last is not None else np.zeros(frame.height)
    )
    return _ArrayFeed(arrays=arrays, timeframe=bt.TimeFrame.Minutes, compression=minutes)
