"""The specialist agents (ORB, Strat, TTM) and the Satyland sub-agent.

Properties on arbitrary bar series (confidence within bounds, finite features, no vote
when inactive), and golden checks on the bundled real SPY bars of October 2013: every
expected value is recomputed here from `data/*.parquet` with polars and TA-Lib, and the
key candles are quoted as read by hand from the minute bars.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.agents.base import Agent, AgentDecision, Enrichment
from engine.agents.orb import OrbAgent, OrbConfig
from engine.agents.satyland import SatylandAgent
from engine.agents.strat import Pattern, StratAgent, candle_type, strat_pattern
from engine.agents.ttm import TtmAgent
from engine.calendar import xnys_calendar
from engine.enrichment import build_enrichment
from engine.marketdata import Bar
from engine.resample import timeframe_bars, timeframe_minutes

ET = ZoneInfo("America/New_York")
FIRST_SESSION = date(2013, 10, 4)
FLAGS_ON = {"enable_orb": True, "enable_strat": True, "enable_ttm": True, "enable_satyland": True}
FLAGS_OFF = dict.fromkeys(FLAGS_ON, False)
CENT = 1e-9  # prices quoted by hand, to the cent, against float64 sums of 1/10000s
AGENTS: tuple[Agent, ...] = (OrbAgent(), StratAgent(), TtmAgent(), SatylandAgent())
EXPECTED = {"orb": (0, 100), "strat": (15, 95), "ttm": (0, 80), "satyland": (20, 90)}


def et(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ET)


# ---------------------------------------------------------------- the real bars


@pytest.fixture(scope="module")
def feed() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture(scope="module")
def minutes() -> pl.DataFrame:
    """SPY regular-hours minute bars of October 2013, read straight from the Parquet."""
    df = pl.read_parquet(bundled_data_dir() / "bars_1m.parquet").filter(pl.col("symbol") == "SPY")
    df = df.with_columns(et=pl.col("ts").dt.convert_time_zone("America/New_York"))
    minute_of_day = pl.col("et").dt.hour().cast(pl.Int32) * 60 + pl.col("et").dt.minute()
    return df.filter(minute_of_day.is_between(570, 959), pl.col("et").dt.year() == 2013).sort("ts")


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    df = pl.read_parquet(bundled_data_dir() / "bars_1d.parquet")
    return df.filter(pl.col("symbol") == "SPY").sort("ts")


def enrichment_at(
    feed: ReplayMarketData,
    when: datetime,
    direction: Literal["long", "short"] = "long",
    timeframe: str = "5m",
    symbol: str = "SPY",
) -> Enrichment:
    return asyncio.run(
        build_enrichment(
            feed,
            xnys_calendar(),
            signal_id=1,
            symbol=symbol,
            direction=direction,
            timeframe=timeframe,
            as_of=when,
            first_session=FIRST_SESSION,
        )
    )


def candles_5m(minutes: pl.DataFrame, e: Enrichment, every: str = "5m") -> pl.DataFrame:
    """Independent candles: the same minute bars the enrichment holds, grouped by polars
    (09:30 is on the 5- and 15-minute grid), complete ones only."""
    window = minutes.filter(pl.col("ts") >= e.bars_1m[0].ts, pl.col("ts") < e.as_of)
    out = (
        window.group_by_dynamic("et", every=every)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("et")
    )
    return out.filter(pl.col("et").dt.offset_by(every) <= e.as_of.astimezone(ET))


def cols(df: pl.DataFrame) -> dict[str, np.ndarray[Any, Any]]:
    return {c: df[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close")}


def daily_window(daily: pl.DataFrame, e: Enrichment) -> pl.DataFrame:
    """The daily bars the enrichment holds (the sessions before its date)."""
    first, last = e.bars_1d[0].ts, e.bars_1d[-1].ts
    window = daily.filter(pl.col("ts") >= first, pl.col("ts") <= last)
    assert window.height == len(e.bars_1d)
    return window


def talib_daily_atr(window: pl.DataFrame) -> float:
    h, lo, c = (window[k].to_numpy().astype(np.float64) for k in ("high", "low", "close"))
    return float(talib.ATR(h, lo, c, 14)[-1])


# ---------------------------------------------------------------- ORB on 2013-10-07


def test_orb_sees_the_real_opening_range_breakout_of_2013_10_07(
    feed: ReplayMarketData, minutes: pl.DataFrame, daily: pl.DataFrame
) -> None:
    opening = minutes.filter(
        pl.col("et") >= et(2013, 10, 7, 9, 30), pl.col("et") < et(2013, 10, 7, 9, 45)
    )
    assert opening.height == 15
    high, low = float(opening["high"].max()), float(opening["low"].min())  # type: ignore[arg-type]
    # By hand from the minute bars: the high is 09:44's 167.67, the low 09:32's 167.25.
    assert (high, low) == pytest.approx((167.67, 167.25), abs=CENT)

    e = enrichment_at(feed, et(2013, 10, 7, 9, 50))
    candles = candles_5m(minutes, e)
    breakout = candles.row(-1, named=True)
    assert breakout["et"] == et(2013, 10, 7, 9, 45)
    close = breakout["close"]
    assert close == pytest.approx(167.81, abs=CENT) and close > high  # above the range

    decision = OrbAgent().decide(e)
    assert decision is not None and OrbAgent().active(e, FLAGS_ON)
    assert decision.bias == "long"
    f = decision.features
    assert (f["or_high"], f["or_low"], f["close"]) == pytest.approx((high, low, close), abs=CENT)
    assert f["range_multiple"] == pytest.approx((close - high) / (high - low))

    volumes = candles["volume"].to_numpy().astype(np.float64)
    ratio = volumes[-1] / volumes[-21:-1].mean()
    datr = talib_daily_atr(daily_window(daily, e))
    expected = (
        40
        + 20 * min(1.0, (close - high) / (high - low) / 0.5)
        + 20 * min(1.0, max(0.0, ratio - 1))
        + 20 * min(1.0, max(0.0, 1 - (high - low) / datr))
    )
    assert f["volume_ratio"] == pytest.approx(ratio)
    assert f["daily_atr"] == pytest.approx(datr)
    assert decision.confidence == pytest.approx(expected)


def test_orb_gives_no_vote_before_the_range_ends_inside_it_off_list_or_flag_off(
    feed: ReplayMarketData,
) -> None:
    orb = OrbAgent()
    before = enrichment_at(feed, et(2013, 10, 7, 9, 44), timeframe="1m")
    assert not orb.in_window(before) and not orb.active(before, FLAGS_ON)
    # At 09:46 the last 1-minute candle (09:45, close 167.62) is back inside the range.
    inside = enrichment_at(feed, et(2013, 10, 7, 9, 46), timeframe="1m")
    assert inside.bars_tf[-1].close == pytest.approx(167.62, abs=CENT)
    assert orb.in_window(inside) and orb.decide(inside) is None
    assert not orb.active(inside, FLAGS_ON)
    breakout = enrichment_at(feed, et(2013, 10, 7, 9, 50))
    assert not orb.active(breakout, FLAGS_OFF) and not orb.active(breakout, {})
    ibm = enrichment_at(feed, et(2013, 10, 7, 9, 50), symbol="IBM")
    assert not orb.active(ibm, FLAGS_ON) and orb.decide(ibm) is None
    longer = OrbAgent(OrbConfig(range_minutes=30))
    assert not longer.active(breakout, FLAGS_ON)  # its range runs until 10:00


# ---------------------------------------------------------------- Strat


def types_of(candles: pl.DataFrame) -> list[str]:
    rows = candles.tail(4).rows(named=True)
    out = []
    for prev, cur in pairwise(rows):
        up, down = cur["high"] > prev["high"], cur["low"] < prev["low"]
        out.append("3" if up and down else "2u" if up else "2d" if down else "1")
    return out


def test_strat_sees_a_real_2_1_2_continuation_on_spy_5_minute_candles(
    feed: ReplayMarketData, minutes: pl.DataFrame
) -> None:
    e = enrichment_at(feed, et(2013, 10, 7, 10, 25))
    candles = candles_5m(minutes, e)
    last4 = candles.tail(4).select("et", "high", "low").rows()
    # 10:05 H 168.09 L 167.68; 10:10 H 168.20 L 168.02 (2u); 10:15 H 168.19 L 168.05
    # (inside: neither side taken out); 10:20 H 168.35 L 168.12 (2u: takes out 168.19).
    assert [t.strftime("%H:%M") for t, _, _ in last4] == ["10:05", "10:10", "10:15", "10:20"]
    assert [x for _, h, lo in last4 for x in (h, lo)] == pytest.approx(
        [168.09, 167.68, 168.2, 168.02, 168.19, 168.05, 168.35, 168.12], abs=CENT
    )
    assert types_of(candles) == ["2u", "1", "2u"]

    strat = StratAgent()
    decision = strat.decide(e)
    assert decision is not None and strat.active(e, FLAGS_ON)
    assert decision.bias == "long"
    assert decision.reasons[0].startswith("2-1-2 continuation (2u-1-2u)")
    f = decision.features
    highs = [h for _, h, _ in last4[1:]]
    assert [f["c1_high"], f["c2_high"], f["c3_high"]] == pytest.approx(highs, abs=CENT)

    # Higher timeframes in progress at 10:25: 15m from 10:15, 60m from 09:30, the day.
    today = minutes.filter(pl.col("et") >= et(2013, 10, 7, 9, 30), pl.col("ts") < e.as_of)
    last = float(today["close"][-1])
    for label, start in (("15m", et(2013, 10, 7, 10, 15)), ("60m", et(2013, 10, 7, 9, 30))):
        first_open = float(today.filter(pl.col("et") >= start)["open"][0])
        assert f[f"htf_{label}"] == (1.0 if last > first_open else -1.0)
    assert f["htf_1d"] == (1.0 if last > float(today["open"][0]) else -1.0)
    assert f["htf_score"] == 1.0  # all green: full continuity with the long

    c = cols(candles)
    delta = (
        c["close"]
        - ((talib.MAX(c["high"], 20) + talib.MIN(c["low"], 20)) / 2 + talib.SMA(c["close"], 20)) / 2
    )
    momentum = talib.LINEARREG(delta, 20)
    # The trigger candle (O 168.13 H 168.35 L 168.12 C 168.24) has no half-range wick.
    expected = 45 + 5 + 20 * 1.0 + 0 + 10 * (momentum[-1] > 0) + 5 * (momentum[-1] > momentum[-2])
    assert f["wick_score"] == 0.0
    assert f["ttm_momentum"] == pytest.approx(momentum[-1], abs=1e-9)
    assert decision.confidence == pytest.approx(expected)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (et(2013, 10, 7, 11, 45), "3-2-2 3-2u-2d short"),  # 11:30, 11:35, 11:40
        (et(2013, 10, 8, 15, 50), "3-1-2 3-1-2d short"),  # 15:35, 15:40, 15:45
        (et(2013, 10, 7, 11, 15), "2-1-2 2d-1-2u long"),  # 11:00, 11:05, 11:10: reversal
    ],
)
def test_strat_sees_real_3_2_2_3_1_2_and_reversal_patterns(
    feed: ReplayMarketData, minutes: pl.DataFrame, when: datetime, expected: str
) -> None:
    name, trio, bias = expected.split()
    e = enrichment_at(feed, when, direction="short")
    assert types_of(candles_5m(minutes, e)) == trio.split("-")
    decision = StratAgent().decide(e)
    assert decision is not None
    assert decision.bias == bias and decision.reasons[0].startswith(f"{name} ")
    assert f"({trio})" in decision.reasons[0]


def test_strat_gives_no_vote_without_a_pattern(
    feed: ReplayMarketData, minutes: pl.DataFrame
) -> None:
    e = enrichment_at(feed, et(2013, 10, 7, 10, 30))
    assert types_of(candles_5m(minutes, e)) == ["1", "2u", "1"]  # 10:25 is inside 10:20
    assert StratAgent().decide(e) is None and not StratAgent().active(e, FLAGS_ON)


def test_strat_pattern_table() -> None:
    assert strat_pattern(["2d", "1", "2u"]) == Pattern("2-1-2", ("2d", "1", "2u"), "long", False)
    assert strat_pattern(["2u", "1", "2u"]) == Pattern("2-1-2", ("2u", "1", "2u"), "long", True)
    assert strat_pattern(["3", "1", "2d"]) == Pattern("3-1-2", ("3", "1", "2d"), "short", False)
    assert strat_pattern(["3", "2d", "2u"]) == Pattern("3-2-2", ("3", "2d", "2u"), "long", False)
    for no in (
        ["3", "2u", "2u"],
        ["2u", "1", "1"],
        ["1", "1", "2u"],
        ["2u", "2u", "2d"],
        ["1", "2u"],
    ):
        assert strat_pattern(no) is None  # type: ignore[arg-type]
    t0 = datetime(2013, 10, 7, 14, tzinfo=UTC)

    def bar(high: float, low: float) -> Bar:
        return Bar("SPY", t0, low, high, low, high, 1)

    assert candle_type(bar(10, 5), bar(10, 5)) == "1"  # equal high and low: inside
    assert candle_type(bar(10, 5), bar(10.01, 5)) == "2u"
    assert candle_type(bar(10, 5), bar(10, 4.99)) == "2d"
    assert candle_type(bar(10, 5), bar(11, 4)) == "3"


# ---------------------------------------------------------------- TTM squeeze


def talib_squeeze(
    c: dict[str, np.ndarray[Any, Any]],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    bb_upper, _, bb_lower = talib.BBANDS(c["close"], 20, 2.0, 2.0)  # matype 0 (SMA), the default
    mid, width = talib.EMA(c["close"], 20), 1.5 * talib.ATR(c["high"], c["low"], c["close"], 20)
    on = (bb_upper < mid + width) & (bb_lower > mid - width)
    delta = (
        c["close"]
        - ((talib.MAX(c["high"], 20) + talib.MIN(c["low"], 20)) / 2 + talib.SMA(c["close"], 20)) / 2
    )
    return on, talib.LINEARREG(delta, 20)


def test_ttm_sees_the_real_squeeze_release_of_2013_10_07_1240(
    feed: ReplayMarketData, minutes: pl.DataFrame
) -> None:
    e = enrichment_at(feed, et(2013, 10, 7, 12, 45), direction="short")
    candles = candles_5m(minutes, e)
    assert candles["et"][-1] == et(2013, 10, 7, 12, 40)
    c = cols(candles)
    on, momentum = talib_squeeze(c)
    assert on[-2] and not on[-1]  # on at 12:35, off at 12:40: released
    assert on[-13:-1].all() and not on[-14]  # on for the 12 candles 11:40 .. 12:35
    assert momentum[-1] < 0  # momentum below zero: the release points down

    ttm = TtmAgent()
    decision = ttm.decide(e)
    assert decision is not None and ttm.active(e, FLAGS_ON)
    assert decision.bias == "short"
    f = decision.features
    assert f["squeeze_length"] == 12
    assert f["momentum"] == pytest.approx(momentum[-1], abs=1e-9)
    atr14 = float(talib.ATR(c["high"], c["low"], c["close"], 14)[-1])
    slope = -(momentum[-1] - momentum[-2]) / atr14
    level = abs(momentum[-1]) / atr14
    expected = (
        20 + 30 * 12 / 15 + 20 * min(1.0, max(0.0, slope / 0.25)) + 10 * min(1.0, level / 0.5)
    )
    assert decision.confidence == pytest.approx(expected)

    # The same release does not back a long alert, and a candle earlier it was still on.
    assert not ttm.active(enrichment_at(feed, et(2013, 10, 7, 12, 45), direction="long"), FLAGS_ON)
    assert not ttm.active(enrichment_at(feed, et(2013, 10, 7, 12, 40), direction="short"), FLAGS_ON)


# ---------------------------------------------------------------- Satyland


def test_satyland_levels_ribbon_and_phase_on_real_bars(
    feed: ReplayMarketData, minutes: pl.DataFrame, daily: pl.DataFrame
) -> None:
    e = enrichment_at(feed, et(2013, 10, 7, 12, 45), direction="short")
    decision = SatylandAgent().decide(e)
    assert decision is not None and not decision.veto
    f = decision.features

    window = daily_window(daily, e)
    prev_close = float(window["close"][-1])
    assert window["ts"][-1].date() == date(2013, 10, 4)  # the session before 10-07
    datr = talib_daily_atr(window)
    assert f["prev_close"] == pytest.approx(prev_close, abs=CENT)
    assert f["daily_atr"] == pytest.approx(datr)
    for level in (0.236, 0.382, 0.618, 1.0):
        key = f"{level:.3f}".replace(".", "_")
        assert f[f"level_up_{key}"] == pytest.approx(prev_close + level * datr)
        assert f[f"level_down_{key}"] == pytest.approx(prev_close - level * datr)

    c = cols(candles_5m(minutes, e))
    emas = [float(talib.EMA(c["close"], p)[-1]) for p in (8, 13, 21, 48, 200)]
    for p, value in zip((8, 13, 21, 48, 200), emas, strict=True):
        if math.isnan(value):
            assert f"ema{p}" not in f  # fewer candles than the period: left out
        else:
            assert f[f"ema{p}"] == pytest.approx(value)
    defined = [v for v in emas if not math.isnan(v)]
    pairs = list(pairwise(defined))
    ribbon = sum((a > b) - (a < b) for a, b in pairs) / len(pairs)
    assert f["ribbon_score"] == ribbon

    raw = (
        100
        * (c["close"] - talib.EMA(c["close"], 21))
        / (3 * talib.ATR(c["high"], c["low"], c["close"], 14))
    )
    first = int(np.argmax(~np.isnan(raw)))
    phase = float(talib.EMA(raw[first:], 3)[-1])
    assert f["phase"] == pytest.approx(phase)

    position = (c["close"][-1] - prev_close) / datr
    levels = 0.0 if abs(position) < 0.236 or abs(position) >= 1 else math.copysign(1, position)
    score = 0.4 * ribbon + 0.3 * levels + 0.3 * max(-1.0, min(1.0, phase / 61.8))
    assert f["score"] == pytest.approx(score)
    volume = candles_5m(minutes, e)["volume"].to_numpy().astype(np.float64)
    ratio = volume[-1] / volume[-21:-1].mean()
    expected = 20 + 55 * abs(score) + 10 * min(1.0, max(0.0, ratio - 1)) + 5 * (abs(phase) < 100)
    assert decision.confidence == pytest.approx(expected)
    assert decision.bias == ("long" if score >= 0.15 else "short" if score <= -0.15 else "neutral")


# ---------------------------------------------------------------- properties

SESSIONS = (date(2013, 10, 7), date(2013, 10, 8), date(2013, 11, 29), date(2014, 3, 10))
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "4h", "1d")


@st.composite
def enrichments(draw: st.DrawFn, release: bool = False) -> Enrichment:
    """Random regular-hours minute bars over the session before and the session of
    `as_of` (some minutes missing, prices on a coarse or fine tick, maybe no volume, maybe
    a burst of volatility at the end) and random daily history; `bars_tf` built as the
    enrichment builder does, or left empty for the agents to build. `release`: a quiet
    intraday market whose last candle breaks out (squeezes that release)."""
    cal = xnys_calendar()
    day = draw(st.sampled_from(SESSIONS))
    prev = cal.sessions_between(day - timedelta(days=10), day - timedelta(days=1))[-1]
    open_, close = cal.session_open(day), cal.session_close(day)
    length = int((close - open_).total_seconds() // 60)
    timeframe = draw(st.sampled_from(TIMEFRAMES[:4] if release else TIMEFRAMES))
    step = timeframe_minutes(timeframe) or 1
    if not release:
        step = draw(st.sampled_from((1, step)))  # as_of often on the timeframe's grid
    as_of = open_ + timedelta(minutes=step * draw(st.integers(0, (length + 30) // step)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tick = 0.01 if release else draw(st.sampled_from((0.01, 0.05, 0.5)))
    vol = 0.0003 if release else draw(st.sampled_from((0.0, 0.0005, 0.002, 0.01)))
    drop = 0.0 if release else draw(st.sampled_from((0.0, 0.1, 0.6)))
    no_volume = draw(st.booleans())
    stamps = [
        s
        for d in (prev, day)
        for s in _minutes(cal.session_open(d), cal.session_close(d))
        if s + timedelta(minutes=1) <= as_of
    ]
    stamps = [s for s in stamps if rng.random() >= drop]
    symbol = draw(st.sampled_from(("SPY", "QQQ", "SPX", "IBM")))
    scale = np.ones(len(stamps))
    burst = step if release else draw(st.sampled_from((0, step, 2 * step, 120)))
    scale[max(0, len(stamps) - burst) :] = 15.0 if release else draw(st.sampled_from((1.0, 15.0)))
    direction: Literal["long", "short"] = draw(st.sampled_from(("long", "short")))
    # In `release` the breakout mostly runs the alert's way (a drift of one sigma a minute).
    toward = (1.0 if direction == "long" else -1.0) * draw(st.sampled_from((1.0, 1.0, -1.0)))
    drift = toward * vol * (scale - 1.0) if release else np.zeros(len(stamps))
    bars_1m = _walk(
        symbol, stamps, rng, tick=tick, vol=vol * scale, no_volume=no_volume, drift=drift
    )
    n_daily = draw(st.integers(0, 40))
    daily_days = cal.sessions_between(prev - timedelta(days=90), prev)[-n_daily:] if n_daily else []
    daily_stamps = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in daily_days]
    daily_vol = np.full(len(daily_stamps), 10 * vol + 0.005)
    bars_1d = _walk(symbol, daily_stamps, rng, tick=tick, vol=daily_vol, no_volume=no_volume)
    with_tf = draw(st.booleans())
    return Enrichment(
        signal_id=1,
        symbol=symbol,
        direction=direction,
        timeframe=timeframe,
        as_of=as_of,
        bars_1m=bars_1m,
        bars_1d=bars_1d,
        session_open=open_,
        session_close=close,
        market_open=open_ <= as_of < close,
        bars_tf=timeframe_bars(timeframe, bars_1m, bars_1d, cal, as_of) if with_tf else (),
    )


def _minutes(start: datetime, stop: datetime) -> list[datetime]:
    n = int((stop - start).total_seconds() // 60)
    return [start + timedelta(minutes=k) for k in range(n)]


def _walk(
    symbol: str,
    stamps: list[datetime],
    rng: np.random.Generator,
    *,
    tick: float,
    vol: np.ndarray[Any, Any],
    no_volume: bool,
    drift: np.ndarray[Any, Any] | None = None,
) -> tuple[Bar, ...]:
    n = len(stamps)
    steps = rng.normal(0, 1, n) * vol + (0.0 if drift is None else drift)
    close = 100 * np.exp(np.cumsum(steps))
    opens = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 1, n) * vol) * 100

    def on_tick(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.maximum(np.round(x / tick) * tick, tick)

    o, c = on_tick(opens), on_tick(close)
    h, lo = on_tick(np.maximum(o, c) + spread), on_tick(np.minimum(o, c) - spread)
    h, lo = np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c))
    volume = np.zeros(n, dtype=np.int64) if no_volume else rng.integers(0, 10_000, n)
    return tuple(
        Bar(symbol, stamps[i], float(o[i]), float(h[i]), float(lo[i]), float(c[i]), int(volume[i]))
        for i in range(n)
    )


def check_decision(agent: Agent, e: Enrichment, decision: AgentDecision) -> None:
    lo, hi = agent.bounds
    assert (lo, hi) == EXPECTED[agent.name]
    assert lo <= decision.confidence <= hi
    assert decision.agent == agent.name and decision.group == agent.group
    assert decision.bias in ("long", "short", "neutral") and not decision.veto
    assert all(math.isfinite(v) for v in decision.features.values())
    assert decision.reasons and decision.version


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    st.one_of(enrichments(), enrichments(release=True)),
    st.dictionaries(st.sampled_from(sorted(FLAGS_ON)), st.booleans()),
)
def test_confidence_within_bounds_and_inactive_agents_do_not_vote(
    e: Enrichment, flags: Mapping[str, bool]
) -> None:
    for agent in AGENTS:
        decision = agent.decide(e)
        assert not agent.active(e, FLAGS_OFF)
        assert agent.active(e, FLAGS_ON) == (decision is not None)
        flag = f"enable_{agent.name}"
        assert agent.active(e, flags) == (flags.get(flag, False) and decision is not None)
        event(f"{agent.name} {'votes' if decision is not None else 'silent'}")
        if decision is not None:
            check_decision(agent, e, decision)
            if agent.name == "ttm":
                assert decision.bias == e.direction
            if agent.name in ("orb", "strat"):
                assert decision.bias != "neutral"


@PROPERTY
@given(enrichments())
def test_orb_votes_only_for_its_symbols_after_the_opening_range(e: Enrichment) -> None:
    orb = OrbAgent()
    in_session = e.session_open + timedelta(minutes=15) <= e.as_of < e.session_close
    if e.symbol not in ("SPY", "QQQ", "SPX") or not in_session or e.timeframe == "1d":
        assert orb.decide(e) is None and not orb.active(e, FLAGS_ON)
