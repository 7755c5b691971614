"""The shared enrichment: one market-data call per bar series, no look-ahead, real bars.

The market is the real `ReplayMarketData("spy-2013-10")` behind a counting wrapper that
records every call it passes on. Reference bars are read from the bundled Parquet files
with polars, independently of the replay's code path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.agents.base import Agent, Enrichment
from engine.agents.panel import panel
from engine.alerts import canonical_timeframe
from engine.calendar import xnys_calendar
from engine.enrichment import EnrichmentConfig, build_enrichment, minute_sessions
from engine.errors import Rejected
from engine.marketdata import Bar, Timeframe
from engine.meta import cast_vote
from engine.resample import period_bars, timeframe_minutes

T = TypeVar("T")
CAL = xnys_calendar()
FIRST = date(2013, 10, 4)
SESSIONS = (date(2013, 10, 4), *(date(2013, 10, d) for d in (7, 8, 9, 10, 11)))
ALERTS = json.loads((bundled_data_dir() / "alerts" / "spy-2013-10.ema-cross-5m.json").read_text())
ALL_FLAGS = {
    "enable_variant_b": True,
    "enable_orb": True,
    "enable_strat": True,
    "enable_ttm": True,
    "enable_satyland": True,
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class CountingMarket:
    """The real replay, with a record of every `bars` call passed on to it."""

    def __init__(self, inner: ReplayMarketData) -> None:
        self.inner = inner
        self.calls: list[tuple[Timeframe, datetime, datetime, datetime]] = []

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        self.calls.append((timeframe, start, end, as_of))
        return await self.inner.bars(symbol, timeframe, start, end, as_of)

    def count(self, timeframe: Timeframe) -> int:
        return sum(1 for call in self.calls if call[0] is timeframe)


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture(scope="module")
def minute_frame() -> pl.DataFrame:
    """SPY's bundled minute bars, straight from the Parquet file."""
    return (
        pl.read_parquet(bundled_data_dir() / "bars_1m.parquet")
        .filter(pl.col("symbol") == "SPY")
        .sort("ts")
    )


def enrich(
    market: CountingMarket | ReplayMarketData,
    as_of: datetime,
    timeframe: str = "5m",
    first_session: date | None = FIRST,
    config: EnrichmentConfig | None = None,
) -> Enrichment:
    return run(
        build_enrichment(
            market,
            CAL,
            signal_id=7,
            symbol="SPY",
            direction="long",
            timeframe=timeframe,
            as_of=as_of,
            first_session=first_session,
            config=config,
        )
    )


def alert_due(alert: dict[str, Any]) -> datetime:
    """When TradingView sends a bundled alert: its bar's open + 5 minutes."""
    return datetime.fromisoformat(str(alert["timestamp"])) + timedelta(minutes=5)


def test_every_bundled_alert_costs_one_call_per_bar_series_however_many_agents_vote(
    replay: ReplayMarketData,
) -> None:
    agents: list[Agent] = panel()
    for alert in ALERTS:
        market = CountingMarket(replay)
        enrichment = enrich(market, alert_due(alert), canonical_timeframe(str(alert["timeframe"])))
        for agent in agents:
            cast_vote(agent, enrichment, ALL_FLAGS)
        assert market.count(Timeframe.MINUTE) == 1
        assert market.count(Timeframe.DAY) == 1
        assert len(market.calls) == 2


@settings(max_examples=100)
@given(
    day=st.sampled_from(SESSIONS),
    minute=st.integers(min_value=-120, max_value=500),
    timeframe=st.sampled_from(["1m", "3m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]),
)
def test_any_moment_of_the_bundled_week_needs_two_calls_and_sees_nothing_later(
    replay: ReplayMarketData, day: date, minute: int, timeframe: str
) -> None:
    as_of = CAL.session_open(day) + timedelta(minutes=minute)
    market = CountingMarket(replay)
    e = enrich(market, as_of, timeframe)
    assert (market.count(Timeframe.MINUTE), market.count(Timeframe.DAY)) == (1, 1)
    assert all(b.ts + timedelta(minutes=1) <= as_of for b in e.bars_1m)
    assert all(
        CAL.session_open(b.ts.date()) <= b.ts < CAL.session_close(b.ts.date()) for b in e.bars_1m
    )
    assert all(b.ts.date() < day for b in e.bars_1d)
    assert e.bars_1d[-1].ts.date() == CAL.sessions_between(day - timedelta(days=7), day)[-2]
    minutes = timeframe_minutes(timeframe)
    if minutes is not None:
        ends = [
            min(b.ts + timedelta(minutes=minutes), CAL.session_close(b.ts.date()))
            for b in e.bars_tf
        ]
        assert all(end <= as_of for end in ends)
    assert e.market_open == (CAL.session_open(day) <= as_of < CAL.session_close(day))


def test_the_minute_window_starts_at_the_open_of_the_oldest_session_needed(
    replay: ReplayMarketData,
) -> None:
    # 5m: 78 bars a session, so 250 bars need ceil(250 / 78) = 4 earlier sessions + today.
    market = CountingMarket(replay)
    as_of = datetime(2013, 10, 11, 15, 0, tzinfo=UTC)
    e = enrich(market, as_of)
    minute_call = next(c for c in market.calls if c[0] is Timeframe.MINUTE)
    assert minute_call[1:] == (CAL.session_open(date(2013, 10, 7)), as_of, as_of)
    assert sorted({b.ts.date() for b in e.bars_1m}) == list(SESSIONS[1:])
    assert len(e.bars_tf) == 4 * 78 + 18  # 09:30..10:55 ET on the 11th
    assert e.bars_tf[-1].ts == datetime(2013, 10, 11, 14, 55, tzinfo=UTC)


def test_the_first_bundled_day_is_not_crossed_and_without_first_session_the_replay_refuses(
    replay: ReplayMarketData,
) -> None:
    as_of = datetime(2013, 10, 7, 15, 50, tzinfo=UTC)
    e = enrich(CountingMarket(replay), as_of)
    assert sorted({b.ts.date() for b in e.bars_1m}) == [date(2013, 10, 4), date(2013, 10, 7)]
    first_day = enrich(CountingMarket(replay), datetime(2013, 10, 4, 14, 0, tzinfo=UTC))
    assert {b.ts.date() for b in first_day.bars_1m} == {date(2013, 10, 4)}
    assert len(first_day.bars_1m) == 30
    with pytest.raises(Rejected) as refused:
        enrich(CountingMarket(replay), as_of, first_session=None)
    assert refused.value.code == "unavailable"


def test_minute_sessions_follow_the_calendar_across_a_holiday_and_the_cap() -> None:
    cfg = EnrichmentConfig()
    # 2013-11-28 is Thanksgiving: the five sessions up to 2013-12-02 skip it.
    got = minute_sessions(CAL, date(2013, 12, 2), "5m", cfg, None)
    assert got == [date(2013, 11, d) for d in (25, 26, 27, 29)] + [date(2013, 12, 2)]
    assert len(minute_sessions(CAL, date(2013, 12, 2), "1h", cfg, None)) == 30
    assert minute_sessions(CAL, date(2013, 12, 2), "1d", cfg, None) == [date(2013, 12, 2)]
    assert minute_sessions(CAL, date(2013, 10, 4), "5m", cfg, FIRST) == [FIRST]


def test_bars_are_the_bundled_bars_regular_hours_and_five_minute_slots_from_the_open(
    replay: ReplayMarketData, minute_frame: pl.DataFrame
) -> None:
    as_of = datetime(2013, 10, 10, 16, 0, tzinfo=UTC)
    e = enrich(CountingMarket(replay), as_of)
    et = pl.col("ts").dt.convert_time_zone("America/New_York")
    rth = minute_frame.filter(
        (pl.col("ts") >= datetime(2013, 10, 4, tzinfo=UTC))
        & (pl.col("ts") + pl.duration(minutes=1) <= as_of)
        & (et.dt.hour().cast(pl.Int32) * 60 + et.dt.minute()).is_between(9 * 60 + 30, 16 * 60 - 1)
    ).with_columns(pl.col("open", "high", "low", "close").round(4))
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in e.bars_1m] == list(
        rth.select("ts", "open", "high", "low", "close", "volume").iter_rows()
    )
    # Every session of the week opens at 13:30 UTC, on the 5-minute grid, so flooring to
    # 5 minutes is the slot from the open; each slot here ends by as_of.
    five = (
        rth.group_by_dynamic("ts", every="5m")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("ts")
    )
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in e.bars_tf] == list(
        five.iter_rows()
    )
    assert len(e.bars_tf) == 4 * 78 + 30


def test_daily_bars_are_the_260_sessions_before_today(replay: ReplayMarketData) -> None:
    daily = (
        pl.read_parquet(bundled_data_dir() / "bars_1d.parquet")
        .filter((pl.col("symbol") == "SPY") & (pl.col("ts") < datetime(2013, 10, 10, tzinfo=UTC)))
        .sort("ts")
        .tail(260)
        .with_columns(pl.col("close").round(4))  # the replay serves the data's 4 decimals
    )
    e = enrich(CountingMarket(replay), datetime(2013, 10, 10, 16, 0, tzinfo=UTC))
    assert [(b.ts, b.close) for b in e.bars_1d] == list(daily.select("ts", "close").iter_rows())
    assert e.bars_1d[-1].ts.date() == date(2013, 10, 9)
    assert e.bars_1d[-1].close == 165.57


def test_after_the_close_the_session_is_the_days_and_the_market_is_closed(
    replay: ReplayMarketData,
) -> None:
    as_of = datetime(2013, 10, 10, 21, 0, tzinfo=UTC)
    e = enrich(CountingMarket(replay), as_of)
    assert (e.session_open, e.session_close) == (
        datetime(2013, 10, 10, 13, 30, tzinfo=UTC),
        datetime(2013, 10, 10, 20, 0, tzinfo=UTC),
    )
    assert not e.market_open
    assert e.bars_1d[-1].ts.date() == date(2013, 10, 9)  # today's daily bar never included
    assert e.bars_1m[-1].ts == datetime(2013, 10, 10, 19, 59, tzinfo=UTC)


def test_a_daily_signal_reads_the_daily_bars_and_one_session_of_minutes(
    replay: ReplayMarketData,
) -> None:
    market = CountingMarket(replay)
    e = enrich(market, datetime(2013, 10, 10, 16, 0, tzinfo=UTC), "1d")
    assert e.bars_tf == e.bars_1d
    assert {b.ts.date() for b in e.bars_1m} == {date(2013, 10, 10)}
    assert len(market.calls) == 2


def test_weeks_group_daily_bars_and_the_open_week_is_left_out() -> None:
    days = [date(2013, 9, d) for d in (23, 24, 25, 26, 27, 30)] + [date(2013, 10, 1)]
    bars = [
        Bar("SPY", datetime(d.year, d.month, d.day, tzinfo=UTC), 10 + i, 20 + i, 5 - i, 11 + i, 100)
        for i, d in enumerate(days)
    ]
    weeks = period_bars(bars, "w", date(2013, 10, 2))
    assert weeks == (Bar("SPY", bars[0].ts, 10, 24, 1, 15, 500),)
    assert period_bars(bars, "d", date(2013, 10, 1)) == tuple(bars[:-1])


def test_timeframe_minutes_of_canonical_timeframes() -> None:
    assert [timeframe_minutes(canonical_timeframe(t)) for t in ("1", "5", "60", "240", "30S")] == [
        1,
        5,
        60,
        240,
        1,
    ]
    assert [timeframe_minutes(canonical_timeframe(t)) for t in ("D", "W", "M", "1440")] == [
        None,
        None,
        None,
        None,
    ]
    with pytest.raises(Rejected):
        timeframe_minutes("5x")
