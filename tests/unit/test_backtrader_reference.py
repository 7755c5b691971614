"""The backtrader reference of the EMA cross rule (tests/reference/backtrader_ema.py)
against the same rule worked out here with plain NumPy on real SPY minute bars.

The expected trades are built independently of the reference module: regular hours from
the XNYS calendar, 5-minute slots from each session's calendar open by integer
arithmetic, an SMA-seeded EMA in a loop, the cross rule, fills at the open of the minute
bar after the signal bar's last minute, quantities by the budget formula. No Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from engine.calendar import xnys_calendar
from tests.reference.backtrader_ema import (
    RefEntry,
    RefTrade,
    backtrader_ema,
    backtrader_ema_cross,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

ROOT = Path(__file__).resolve().parents[2]
FIRST, LAST = date(2013, 10, 4), date(2013, 10, 11)
MINUTE_US = 60_000_000


@dataclass(frozen=True)
class Slots:
    """Resampled bars as arrays: close, index of the last minute bar, session's last."""

    close: F64
    last_minute: I64
    last_of_session: npt.NDArray[np.bool_]


@pytest.fixture(scope="module")
def spy() -> pl.DataFrame:
    """SPY regular-hours minute bars, sessions 2013-10-04..2013-10-11 (XNYS calendar)."""
    cal = xnys_calendar()
    bars = pl.read_parquet(ROOT / "data" / "bars_1m.parquet").filter(pl.col("symbol") == "SPY")
    inside = pl.lit(False)
    for day in cal.sessions_between(FIRST, LAST):
        opens, closes = cal.session_open(day), cal.session_close(day)
        inside = inside | ((pl.col("ts") >= opens) & (pl.col("ts") < closes))
    return bars.filter(inside).sort("ts")


def micros(ts: pl.Series) -> I64:
    return ts.dt.epoch("us").to_numpy()


def slots_by_hand(bars: pl.DataFrame, minutes: int) -> Slots:
    """Group minute bars into `minutes` slots counted from each session's calendar open."""
    cal = xnys_calendar()
    stamps = micros(bars["ts"])
    closes = bars["close"].to_numpy()
    keys: list[tuple[date, int]] = []
    for stamp in stamps.tolist():
        day = cal.session_date(datetime.fromtimestamp(stamp / 1e6, UTC))
        opened = int(cal.session_open(day).timestamp()) * 1_000_000
        keys.append((day, (stamp - opened) // (minutes * MINUTE_US)))
    ends = [i for i in range(len(keys)) if i + 1 == len(keys) or keys[i + 1] != keys[i]]
    days = [keys[i][0] for i in ends]
    last = [j + 1 == len(days) or days[j + 1] != days[j] for j in range(len(days))]
    return Slots(closes[ends], np.asarray(ends, dtype=np.int64), np.asarray(last))


def sma_seeded_ema(values: F64, period: int) -> F64:
    out = np.full(values.size, np.nan)
    if values.size < period:
        return out
    alpha = 2.0 / (period + 1)
    out[period - 1] = math.fsum(values[:period]) / period
    for i in range(period, values.size):
        out[i] = out[i - 1] * (1 - alpha) + values[i] * alpha
    return out


def signals(slots: Slots, fast: int, slow: int) -> list[tuple[int, str]]:
    """(slot index, "buy"/"sell") of the entries and exits of the long-only rule."""
    f, s = sma_seeded_ema(slots.close, fast), sma_seeded_ema(slots.close, slow)
    out: list[tuple[int, str]] = []
    long = False
    for k in range(max(fast, slow), slots.close.size):
        golden = f[k] > s[k] and f[k - 1] <= s[k - 1]
        death = f[k] < s[k] and f[k - 1] >= s[k - 1]
        if golden and not long and not slots.last_of_session[k]:
            out.append((k, "buy"))
            long = True
        elif death and long:
            out.append((k, "sell"))
            long = False
    return out


def expected_trades(
    bars: pl.DataFrame, slots: Slots, marks: list[tuple[int, str]], budget: float, lot: int
) -> tuple[list[RefTrade], RefEntry | None]:
    opens = bars["open"].to_list()
    times = bars["ts"].to_list()
    trades: list[RefTrade] = []
    entry: RefEntry | None = None
    for k, side in marks:
        fill = int(slots.last_minute[k]) + 1  # the next minute bar after the signal bar
        if fill >= len(opens):
            break
        if side == "buy":
            qty = math.floor(budget / slots.close[k] / lot) * lot
            entry = RefEntry(times[fill], opens[fill], qty) if qty > 0 else None
        elif entry is not None:
            pnl = (opens[fill] - entry.entry_price) * entry.quantity
            trades.append(
                RefTrade(
                    entry.entry_time,
                    entry.entry_price,
                    times[fill],
                    opens[fill],
                    entry.quantity,
                    pnl,
                )
            )
            entry = None
    return trades, entry


def assert_same_trades(actual: list[RefTrade], expected: list[RefTrade]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert (a.entry_time, a.entry_price, a.exit_time, a.exit_price, a.quantity) == (
            e.entry_time,
            e.entry_price,
            e.exit_time,
            e.exit_price,
            e.quantity,
        )
        assert a.pnl == pytest.approx(e.pnl, abs=1e-9)


def test_backtrader_ema_is_sma_seeded_like_talib(spy: pl.DataFrame) -> None:
    closes = slots_by_hand(spy, 5).close
    for period in (8, 21):
        theirs = backtrader_ema(closes, period)
        ours = sma_seeded_ema(closes, period)
        np.testing.assert_array_equal(np.isnan(theirs), np.isnan(ours))
        assert np.isnan(theirs[: period - 1]).all()
        assert theirs[period - 1] == pytest.approx(closes[:period].mean(), abs=1e-12)
        np.testing.assert_allclose(theirs[period:], ours[period:], rtol=1e-12)


@pytest.mark.parametrize(
    "case",
    [(5, 8, 21, 500.0, 1), (5, 8, 21, 10_000.0, 10), (15, 3, 5, 500.0, 1)],
    ids=["5m-8-21", "5m-8-21-lot10", "15m-3-5"],
)
def test_trades_match_the_rule_worked_by_hand(
    spy: pl.DataFrame, case: tuple[int, int, int, float, int]
) -> None:
    minutes, fast, slow, budget, lot = case
    slots = slots_by_hand(spy, minutes)
    marks = signals(slots, fast, slow)
    trades, still_open = expected_trades(spy, slots, marks, budget, lot)

    result = backtrader_ema_cross(
        spy, fast=fast, slow=slow, timeframe_minutes=minutes, budget=budget, lot=lot
    )

    assert_same_trades(result.trades, trades)
    assert result.open_trade == still_open
    assert result.pnl == pytest.approx(sum(t.pnl for t in trades), abs=1e-9)
    assert result.bars_per_s > 0


def test_spy_week_facts(spy: pl.DataFrame) -> None:
    """Facts of this week that a reader can check on a chart: 7 round trips of 2 or 3
    shares (~$166-168 on a $500 budget), one held overnight (no session-end exit)."""
    result = backtrader_ema_cross(spy)

    assert len(result.trades) == 7
    assert result.open_trade is None
    assert {t.quantity for t in result.trades} == {2, 3}
    overnight = [t for t in result.trades if t.exit_time.date() != t.entry_time.date()]
    assert [(t.entry_time, t.exit_time) for t in overnight] == [
        (datetime(2013, 10, 10, 18, 50, tzinfo=UTC), datetime(2013, 10, 11, 19, 5, tzinfo=UTC))
    ]
    opens = dict(zip(spy["ts"].to_list(), spy["open"].to_list(), strict=True))
    for t in result.trades:  # every fill is the open of a regular-hours minute bar
        assert opens[t.entry_time] == t.entry_price
        assert opens[t.exit_time] == t.exit_price
    by_hand = sum((t.exit_price - t.entry_price) * t.quantity for t in result.trades)
    assert result.pnl == pytest.approx(by_hand, abs=1e-9)


def test_no_entry_on_a_sessions_last_bar(spy: pl.DataFrame) -> None:
    """EMA 8 crosses above EMA 21 on 2013-10-04's last 5-minute bar (15:55 ET) while
    flat: no entry, so nothing fills at 2013-10-07's open."""
    slots = slots_by_hand(spy, 5)
    fast, slow = sma_seeded_ema(slots.close, 8), sma_seeded_ema(slots.close, 21)
    k = int(np.flatnonzero(slots.last_of_session)[0])
    assert fast[k] > slow[k] and fast[k - 1] <= slow[k - 1]

    result = backtrader_ema_cross(spy)

    assert result.trades[0].entry_time == datetime(2013, 10, 7, 15, 50, tzinfo=UTC)


def test_exit_on_a_sessions_last_bar_fills_at_the_next_open(spy: pl.DataFrame) -> None:
    """15-minute EMA 3/5: a death cross on 2013-10-08's last bar (15:45 ET) exits at the
    open of 2013-10-09's first minute bar."""
    result = backtrader_ema_cross(spy, fast=3, slow=5, timeframe_minutes=15)

    exits = {t.exit_time: t for t in result.trades}
    trade = exits[datetime(2013, 10, 9, 13, 30, tzinfo=UTC)]
    assert trade.entry_time == datetime(2013, 10, 8, 19, 30, tzinfo=UTC)
    assert trade.exit_price == spy.filter(pl.col("ts") == trade.exit_time)["open"].item()
