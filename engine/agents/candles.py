"""The candles the specialist agents read, all from one enrichment.

Resampling itself is `engine.resample` (slots aligned to each session's open, complete
bars only), the same code that builds `Enrichment.bars_tf`. This module adds what the
specialists need on top (docs/agents.md, "Candles"):

- `signal_candles`: the signal timeframe's complete candles, `Enrichment.bars_tf` (built
  once per signal), or built here the same way when an enrichment carries none.
- `session_candles`: the session's own candles of another timeframe, the last one still
  in progress (for higher-timeframe continuity), and `session_candle`, the session so far
  as one daily candle.
- `prior_daily`, `daily_atr`, `volume_ratio`: the daily bars before the session, their
  ATR, and a candle's volume against the ones before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import numpy as np

from engine.agents.base import Enrichment
from engine.agents.series import ohlcv
from engine.calendar import NEW_YORK, MarketCalendar
from engine.indicators import FloatArray, atr
from engine.marketdata import Bar
from engine.resample import intraday_bars, timeframe_bars, timeframe_minutes


def signal_candles(enrichment: Enrichment, calendar: MarketCalendar) -> tuple[Bar, ...]:
    """Complete candles of the signal's timeframe, oldest first."""
    e = enrichment
    if e.bars_tf:
        return e.bars_tf
    return timeframe_bars(e.timeframe, e.bars_1m, e.bars_1d, calendar, e.as_of)


def signal_minutes(enrichment: Enrichment) -> int | None:
    """Minutes per candle of the signal's timeframe; None for a day or longer."""
    return timeframe_minutes(enrichment.timeframe)


def session_bars(enrichment: Enrichment) -> tuple[Bar, ...]:
    """The session's regular-hours minute bars before `as_of`."""
    e = enrichment
    end = min(e.session_close, e.as_of)
    return tuple(b for b in e.bars_1m if e.session_open <= b.ts < end)


def session_candles(
    enrichment: Enrichment, minutes: int, calendar: MarketCalendar
) -> tuple[Bar, ...]:
    """The session's `minutes` candles so far; the last one may be unfinished (its slot
    has not ended at `as_of`)."""
    e = enrichment
    return intraday_bars(session_bars(e), minutes, calendar, e.session_close)


def session_date(enrichment: Enrichment) -> date:
    """The New York trading date of the enrichment's session."""
    return enrichment.session_open.astimezone(NEW_YORK).date()


def session_candle(enrichment: Enrichment) -> Bar | None:
    """The session so far as one candle stamped at its date 00:00 UTC (as daily bars
    are); None before its first minute bar."""
    bars = session_bars(enrichment)
    if not bars:
        return None
    stamp = datetime.combine(session_date(enrichment), time(0), tzinfo=UTC)
    return Bar(
        symbol=bars[0].symbol,
        ts=stamp,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=sum(b.volume for b in bars),
    )


def prior_daily(enrichment: Enrichment) -> tuple[Bar, ...]:
    """Daily bars of sessions before the enrichment's session."""
    today = session_date(enrichment)
    return tuple(b for b in enrichment.bars_1d if b.ts.astimezone(UTC).date() < today)


def daily_atr(daily: Sequence[Bar], n: int = 14) -> float:
    """ATR(n) (Wilder, `engine.indicators.atr`) at the last daily bar; NaN with fewer
    than n + 1 bars."""
    if len(daily) <= n:
        return math.nan
    bars = ohlcv(daily)
    return float(atr(bars.high, bars.low, bars.close, n)[-1])


def volume_ratio(volume: FloatArray, lookback: int = 20) -> float:
    """The last volume ÷ the mean of up to `lookback` volumes before it; NaN when there
    is no earlier volume or their mean is 0 (an index has no volume)."""
    before = volume[max(0, volume.size - 1 - lookback) : volume.size - 1]
    if before.size == 0:
        return math.nan
    mean = float(np.mean(before))
    return float(volume[-1]) / mean if mean > 0 else math.nan
