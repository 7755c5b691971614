"""The core agents: Technical, Context and Risk.

Properties run on arbitrary bar series (hypothesis); golden tests run on the bundled real
SPY bars of scenario spy-2013-10 at moments whose readings are recomputed here
independently: bars read from the Parquet files with polars, EMAs in plain Python,
Bollinger, Keltner and ATR with TA-Lib.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.agents.base import AgentDecision, Enrichment
from engine.agents.context import ContextAgent, ContextConfig
from engine.agents.risk import RiskAgent, RiskAgentConfig
from engine.agents.technical import TechnicalAgent, TechnicalConfig
from engine.calendar import xnys_calendar
from engine.enrichment import Portfolio, build_enrichment
from engine.marketdata import Bar
from engine.positions import Position
from engine.risk import RiskLimits, check_entry

CAL = xnys_calendar()
FIRST = date(2013, 10, 4)
OPEN = datetime(2013, 10, 10, 13, 30, tzinfo=UTC)
CLOSE = datetime(2013, 10, 10, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


def enrich(
    replay: ReplayMarketData, as_of: datetime, portfolio: Portfolio | None = None
) -> Enrichment:
    return asyncio.run(
        build_enrichment(
            replay,
            CAL,
            signal_id=1,
            symbol="SPY",
            direction="long",
            timeframe="5m",
            as_of=as_of,
            portfolio=portfolio,
            first_session=FIRST,
        )
    )


# ------------------------------------------------------------------ independent references


def ema_plain(values: list[float], n: int) -> float:
    """TA-Lib's EMA in plain Python: the SMA of the first n values, then alpha = 2/(n+1)."""
    if len(values) < n:
        return math.nan
    value = sum(values[:n]) / n
    for x in values[n:]:
        value += 2.0 / (n + 1) * (x - value)
    return value


def five_minute_bars(as_of: datetime) -> pl.DataFrame:
    """SPY's regular-hours 5-minute bars from the first bundled day to `as_of`, complete
    ones only, from the Parquet file (every session that week opens at 13:30 UTC, on the
    5-minute grid, so a 5-minute floor is the slot from the open)."""
    et = pl.col("ts").dt.convert_time_zone("America/New_York")
    minutes = et.dt.hour().cast(pl.Int32) * 60 + et.dt.minute()
    return (
        pl.read_parquet(bundled_data_dir() / "bars_1m.parquet")
        .filter(
            (pl.col("symbol") == "SPY")
            & (pl.col("ts") >= datetime(2013, 10, 4, tzinfo=UTC))
            & (pl.col("ts") + pl.duration(minutes=1) <= as_of)
            & minutes.is_between(9 * 60 + 30, 16 * 60 - 1)
        )
        .sort("ts")
        .with_columns(pl.col("open", "high", "low", "close").round(4))
        .group_by_dynamic("ts", every="5m")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
        )
        .filter(pl.col("ts") + pl.duration(minutes=5) <= as_of)
    )


def daily_closes(before: date, count: int) -> list[float]:
    frame = (
        pl.read_parquet(bundled_data_dir() / "bars_1d.parquet")
        .filter(
            (pl.col("symbol") == "SPY")
            & (pl.col("ts") < datetime(before.year, before.month, before.day, tzinfo=UTC))
        )
        .sort("ts")
        .tail(count)
    )
    return [round(x, 4) for x in frame["close"]]


# ------------------------------------------------------------------ golden: Technical


@pytest.mark.parametrize(
    ("as_of", "bias"),
    [
        (datetime(2013, 10, 10, 16, 0, tzinfo=UTC), "long"),  # the rally of Oct 10, noon ET
        (datetime(2013, 10, 8, 18, 0, tzinfo=UTC), "short"),  # the sell-off of Oct 8
    ],
)
def test_technical_reads_a_full_ema_stack_on_real_bars(
    replay: ReplayMarketData, as_of: datetime, bias: str
) -> None:
    bars = five_minute_bars(as_of)
    closes = bars["close"].to_list()
    emas = [ema_plain(closes, n) for n in (8, 13, 21, 48, 200)]
    direction = 1.0 if bias == "long" else -1.0
    # The hand check: every EMA on the bias side of the next slower one.
    assert all(direction * (fast - slow) > 0 for fast, slow in pairwise(emas))

    decision = TechnicalAgent().decide(enrich(replay, as_of))

    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0)
    kc_mid, kc_half = talib.EMA(c, 20)[-1], 1.5 * talib.ATR(h, lo, c, 20)[-1]
    keltner_pos = (c[-1] - kc_mid) / kc_half
    pct_b = (c[-1] - lower[-1]) / (upper[-1] - lower[-1])
    stretched = direction * (pct_b - 0.5) > 0.5
    expected = (
        50.0
        + (20.0 if direction * (c[-1] - emas[2]) > 0 else 0.0)
        + 20.0 * min(max(direction * keltner_pos, 0.0), 1.0)
        - (10.0 if stretched else 0.0)
    )
    assert decision.bias == bias
    assert decision.features["stack_score"] == direction
    assert decision.features["bars"] == len(closes)
    for n, value in zip((8, 13, 21, 48, 200), emas, strict=True):
        assert decision.features[f"ema{n}"] == pytest.approx(value, rel=1e-12)
    assert decision.features["keltner_pos"] == pytest.approx(keltner_pos, rel=1e-9)
    assert decision.features["atr14"] == pytest.approx(talib.ATR(h, lo, c, 14)[-1], rel=1e-9)
    assert decision.confidence == pytest.approx(min(expected, 90.0), abs=1e-9)


def test_technical_is_neutral_without_ema_21_on_the_first_morning(
    replay: ReplayMarketData,
) -> None:
    decision = TechnicalAgent().decide(enrich(replay, datetime(2013, 10, 4, 14, 0, tzinfo=UTC)))
    assert (decision.bias, decision.confidence) == ("neutral", 0.0)
    assert decision.features["bars"] == 6
    assert "ema21" not in decision.features  # undefined features are left out


def test_technical_without_ema_200_scores_its_stack_on_three_pairs(
    replay: ReplayMarketData,
) -> None:
    # 2013-10-08 14:00 UTC: 78 + 78 + 6 = 162 five-minute bars, EMA 200 not yet defined.
    decision = TechnicalAgent().decide(enrich(replay, datetime(2013, 10, 8, 14, 0, tzinfo=UTC)))
    assert decision.features["bars"] == 162
    assert decision.features["stack_pairs"] == 3
    if decision.bias != "neutral":
        assert decision.features["points_stack"] == pytest.approx(50.0 * 3 / 4)


# ------------------------------------------------------------------ golden: Context


def test_context_on_october_10_at_noon(replay: ReplayMarketData) -> None:
    as_of = datetime(2013, 10, 10, 16, 0, tzinfo=UTC)
    closes = daily_closes(date(2013, 10, 10), 260)
    ema_now = ema_plain(closes, 20)
    ema_then = ema_plain(closes[:-5], 20)
    # Hand check: SPY closed at 165.57 on Oct 9, below a falling daily EMA 20.
    assert closes[-1] == 165.57
    assert closes[-1] < ema_now < ema_then
    bars = five_minute_bars(as_of)
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    atr = talib.ATR(h, lo, c, 14)
    atr = atr[np.isfinite(atr)][-100:]
    percentile = 100.0 * float(np.mean(atr <= atr[-1]))
    window = c[-21:]
    er = abs(window[-1] - window[0]) / float(np.sum(np.abs(np.diff(window))))
    regime = "volatile" if percentile >= 80 else "trending" if er >= 0.3 else "ranging"
    first_open = 167.32  # Oct 10's 09:30 ET minute bar opened where its daily bar did
    gap_pct = 100.0 * (first_open - 165.57) / 165.57  # +1.06 %: a gap up, against the trend

    decision = ContextAgent().decide(enrich(replay, as_of))

    assert decision.bias == "short"
    assert decision.reasons == (
        "daily trend down",
        f"regime {regime}",
        "session phase mid-day",
        "gap up",
    )
    assert decision.features["daily_ema"] == pytest.approx(ema_now, rel=1e-12)
    assert decision.features["atr_percentile"] == pytest.approx(percentile)
    assert decision.features["efficiency"] == pytest.approx(er, rel=1e-12)
    assert decision.features["gap_pct"] == pytest.approx(gap_pct, rel=1e-12)
    regime_points = {"trending": 25.0, "ranging": 5.0, "volatile": 0.0}[regime]
    assert decision.confidence == 40.0 + regime_points + 15.0 + 0.0


@pytest.mark.parametrize(
    ("as_of", "phase"),
    [
        (datetime(2013, 10, 10, 13, 35, tzinfo=UTC), "opening"),
        (datetime(2013, 10, 10, 14, 0, tzinfo=UTC), "mid-day"),
        (datetime(2013, 10, 10, 19, 30, tzinfo=UTC), "closing"),
        (datetime(2013, 10, 10, 20, 0, tzinfo=UTC), "closed"),
    ],
)
def test_context_session_phase(replay: ReplayMarketData, as_of: datetime, phase: str) -> None:
    decision = ContextAgent().decide(enrich(replay, as_of))
    assert f"session phase {phase}" in decision.reasons


def test_context_sees_the_gap_down_of_october_7(replay: ReplayMarketData) -> None:
    # Oct 4 closed at 168.89; Oct 7's first regular-hours minute opened at 167.43 (-0.86 %).
    decision = ContextAgent().decide(enrich(replay, datetime(2013, 10, 7, 15, 0, tzinfo=UTC)))
    assert "gap down" in decision.reasons
    assert decision.features["gap_pct"] == pytest.approx(100 * (167.43 - 168.89) / 168.89)


# ------------------------------------------------------------------ golden: Risk


def position(symbol: str, cost: float, key: str = "p1") -> Position:
    return Position(
        position_key=key,
        engine="shadow",
        symbol=symbol,
        instrument=symbol,
        asset_class="equity",
        side="long",
        quantity=1,
        avg_price=cost,
        multiplier=1,
        opened_at=datetime(2013, 10, 10, 14, 0, tzinfo=UTC),
    )


def test_risk_vetoes_after_the_close_and_approves_in_hours(replay: ReplayMarketData) -> None:
    closed = RiskAgent().decide(enrich(replay, datetime(2013, 10, 10, 20, 5, tzinfo=UTC)))
    assert closed.veto and closed.confidence == 100.0
    assert closed.reasons[0].startswith("veto market_closed")
    ok = RiskAgent().decide(enrich(replay, datetime(2013, 10, 10, 16, 0, tzinfo=UTC)))
    assert (ok.veto, ok.bias, ok.confidence) == (False, "neutral", 0.0)


@pytest.mark.parametrize(
    ("portfolio", "code"),
    [
        (Portfolio(open_positions=(position("SPY", 100.0),)), "max_per_symbol"),
        (Portfolio(capital_needed=250.0), "per_trade_risk"),
        (
            Portfolio(
                open_positions=(position("AIG", 9_900.0),),
                limits=RiskLimits(per_trade_risk_pct=0.05),
                capital_needed=150.0,
            ),
            "insufficient_capital",
        ),
        (Portfolio(open_positions=(), realised_drawdown_pct=0.10), "max_drawdown"),
        (
            Portfolio(
                limits=RiskLimits(max_open_positions=1), open_positions=(position("AIG", 1),)
            ),
            "max_open_positions",
        ),
    ],
)
def test_risk_vetoes_each_limit(replay: ReplayMarketData, portfolio: Portfolio, code: str) -> None:
    decision = RiskAgent().decide(
        enrich(replay, datetime(2013, 10, 10, 16, 0, tzinfo=UTC), portfolio)
    )
    assert decision.veto
    assert decision.reasons[0].startswith(f"veto {code}:")


# ------------------------------------------------------------------ properties

prices = st.floats(min_value=1.0, max_value=1_000.0, allow_nan=False)


@st.composite
def bar_series(draw: st.DrawFn, max_size: int = 260) -> tuple[Bar, ...]:
    """An arbitrary random-walk series of consistent 5-minute bars."""
    n = draw(st.integers(min_value=0, max_value=max_size))
    start = draw(prices)
    steps = draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))
    spreads = draw(st.lists(st.floats(0.0, 0.03), min_size=n, max_size=n))
    volumes = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    bars, close = [], start
    t0 = OPEN - timedelta(minutes=5 * n)
    for i, (step, spread, volume) in enumerate(zip(steps, spreads, volumes, strict=True)):
        open_ = close
        close = max(0.01, open_ * (1 + step))
        high, low = max(open_, close) * (1 + spread), min(open_, close) * (1 - spread)
        bars.append(Bar("SPY", t0 + timedelta(minutes=5 * i), open_, high, low, close, volume))
    return tuple(bars)


@st.composite
def enrichments(draw: st.DrawFn) -> Enrichment:
    bars = draw(bar_series())
    daily = tuple(
        Bar(
            "SPY",
            datetime(2013, 1, 1, tzinfo=UTC) + timedelta(days=i),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
        )
        for i, b in enumerate(draw(bar_series(max_size=60)))
    )
    return Enrichment(
        signal_id=1,
        symbol="SPY",
        direction=draw(st.sampled_from(["long", "short"])),
        timeframe="5m",
        as_of=OPEN + timedelta(minutes=draw(st.integers(-60, 450))),
        bars_1m=bars,
        bars_1d=daily,
        session_open=OPEN,
        session_close=CLOSE,
        market_open=draw(st.booleans()),
        bars_tf=bars,
    )


def assert_well_formed(decision: AgentDecision, bounds: tuple[float, float]) -> None:
    assert bounds[0] <= decision.confidence <= bounds[1]
    assert all(math.isfinite(v) for v in decision.features.values())
    json.dumps(
        {"features": dict(decision.features), "config": dict(decision.config)}, allow_nan=False
    )


@given(enrichments())
def test_technical_confidence_is_within_0_and_90_and_zero_when_neutral(e: Enrichment) -> None:
    agent = TechnicalAgent()
    decision = agent.decide(e)
    assert agent.bounds == (0.0, 90.0)
    assert_well_formed(decision, agent.bounds)
    if decision.bias == "neutral":
        assert decision.confidence == 0.0
    assert not decision.veto


@given(enrichments())
def test_context_confidence_is_within_0_and_90_and_zero_when_neutral(e: Enrichment) -> None:
    agent = ContextAgent()
    decision = agent.decide(e)
    assert agent.bounds == (0.0, 90.0)
    assert_well_formed(decision, agent.bounds)
    if decision.bias == "neutral":
        assert decision.confidence == 0.0
    else:
        assert decision.confidence >= 40.0
    assert not decision.veto


flag_names = st.sampled_from(
    ["enable_variant_b", "enable_risk", "risk", "enable_orb", "enable_satyland", "core", "x"]
)


@given(
    flags=st.dictionaries(flag_names, st.booleans()),
    open_count=st.integers(0, 6),
    capital_needed=st.floats(-10.0, 1_000.0) | st.just(math.nan),
    drawdown=st.floats(0.0, 0.5),
    market_open=st.booleans(),
)
def test_no_flag_turns_risk_off_and_it_vetoes_exactly_when_a_rule_fails(
    flags: dict[str, bool],
    open_count: int,
    capital_needed: float,
    drawdown: float,
    market_open: bool,
) -> None:
    positions = tuple(
        position("SPY" if i == 0 else "AIG", 500.0, f"p{i}") for i in range(open_count)
    )
    e = Enrichment(
        signal_id=1,
        symbol="QQQ",
        direction="long",
        timeframe="5m",
        as_of=OPEN,
        bars_1m=(),
        bars_1d=(),
        session_open=OPEN,
        session_close=CLOSE,
        market_open=market_open,
        open_positions=positions,
        capital_needed=capital_needed,
        realised_drawdown_pct=drawdown,
    )
    agent = RiskAgent()
    assert agent.active(e, flags)
    assert agent.active(e, dict.fromkeys(flags, False))
    decision = agent.decide(e)
    rules = check_entry(
        "QQQ",
        positions,
        RiskLimits(),
        market_open=market_open,
        lock=None,
        capital_needed=capital_needed,
    )
    assert decision.veto == (not rules.approved or drawdown >= 0.10)
    assert decision.confidence == (100.0 if decision.veto else 0.0)
    assert_well_formed(decision, agent.bounds)
    assert decision.bias == "neutral"


def test_core_agents_are_active_whatever_the_flags(replay: ReplayMarketData) -> None:
    e = enrich(replay, datetime(2013, 10, 10, 16, 0, tzinfo=UTC))
    for flags in ({}, {"enable_variant_b": False}, {"enable_risk": False, "risk": False}):
        assert TechnicalAgent().active(e, flags)
        assert ContextAgent().active(e, flags)
        assert RiskAgent().active(e, flags)


def test_configs_refuse_points_above_the_bound() -> None:
    with pytest.raises(ValueError):
        TechnicalConfig(stack_points=60.0)
    with pytest.raises(ValueError):
        ContextConfig(trend_points=50.0)
    with pytest.raises(ValueError):
        RiskAgentConfig(max_drawdown_pct=0.0)
