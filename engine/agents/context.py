"""The Context agent (core): regime, session phase, higher-timeframe trend and gap.

Votes with the higher-timeframe (daily) trend; the regime (from the ATR percentile and
the efficiency ratio of the signal's timeframe bars), the session phase of `as_of` and
the opening gap set how much it trusts that trend. Rules and confidence formula in
docs/agents.md, "Context". Confidence lies in 0–90.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Literal

import numpy as np

from engine.agents.base import AgentDecision, Bias, Enrichment, Group
from engine.agents.series import finite, ohlcv
from engine.indicators import ATR_PERIOD, FloatArray, atr, ema

VERSION = "context/1"

Regime = Literal["trending", "ranging", "volatile", "unknown"]
Phase = Literal["opening", "mid-day", "closing", "closed"]
Trend = Literal["up", "down", "flat", "unknown"]
Gap = Literal["up", "down", "none", "unknown"]


@dataclass(frozen=True, slots=True)
class ContextConfig:
    """Thresholds of each reading and the points it adds (at most 90 in all)."""

    atr_lookback: int = 100
    min_atr_values: int = 20
    volatile_percentile: float = 80.0
    er_period: int = 20
    trending_er: float = 0.30
    opening_minutes: int = 30
    closing_minutes: int = 30
    htf_ema: int = 20
    htf_slope_sessions: int = 5
    gap_pct: float = 0.25
    trend_points: float = 40.0
    trending_points: float = 25.0
    ranging_points: float = 5.0
    volatile_points: float = 0.0
    midday_points: float = 15.0
    opening_points: float = 5.0
    closing_points: float = 5.0
    gap_with_points: float = 10.0
    no_gap_points: float = 5.0
    gap_against_points: float = 0.0

    def __post_init__(self) -> None:
        regime = max(self.trending_points, self.ranging_points, self.volatile_points)
        phase = max(self.midday_points, self.opening_points, self.closing_points)
        gap = max(self.gap_with_points, self.no_gap_points, self.gap_against_points)
        points = [v for k, v in asdict(self).items() if k.endswith("_points")]
        if min(points) < 0 or self.trend_points + regime + phase + gap > 90.0:
            raise ValueError(f"points must be >= 0 and reach at most 90, got {self}")
        if min(self.atr_lookback, self.min_atr_values, self.er_period, self.htf_ema) < 1:
            raise ValueError(f"periods must be >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class _Reading:
    trend: Trend
    regime: Regime
    phase: Phase
    gap: Gap
    features: dict[str, float]


class ContextAgent:
    """Core agent: always active; votes with the daily trend (docs/agents.md)."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self._config = config or ContextConfig()

    @property
    def name(self) -> str:
        return "context"

    @property
    def group(self) -> Group:
        return "core"

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 90.0)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        return True

    def decide(self, enrichment: Enrichment) -> AgentDecision:
        cfg = self._config
        r = read_context(enrichment, cfg)
        reasons = (
            f"daily trend {r.trend}",
            f"regime {r.regime}",
            f"session phase {r.phase}",
            f"gap {r.gap}",
        )
        bias = _bias(r.trend)
        confidence = 0.0
        features = dict(r.features)
        if bias != "neutral":
            parts = {
                "trend": cfg.trend_points,
                "regime": _regime_points(cfg, r.regime),
                "phase": _phase_points(cfg, r.phase),
                "gap": _gap_points(cfg, r.gap, r.trend),
            }
            confidence = min(sum(parts.values()), self.bounds[1])
            features |= {f"points_{k}": v for k, v in parts.items()}
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias=bias,
            confidence=confidence,
            reasons=reasons,
            features=finite(features),
            config=asdict(cfg),
            version=VERSION,
        )


def read_context(enrichment: Enrichment, config: ContextConfig) -> _Reading:
    """Every reading of the Context agent, with the numbers behind it."""
    trend, trend_features = htf_trend(ohlcv(enrichment.bars_1d).close, config)
    regime, regime_features = market_regime(enrichment, config)
    gap, gap_pct = opening_gap(enrichment, config)
    return _Reading(
        trend=trend,
        regime=regime,
        phase=session_phase(enrichment, config),
        gap=gap,
        features={**trend_features, **regime_features, "gap_pct": gap_pct},
    )


def htf_trend(daily_close: FloatArray, config: ContextConfig) -> tuple[Trend, dict[str, float]]:
    """up: the last daily close above its EMA and the EMA above its value
    `htf_slope_sessions` sessions earlier; down: both below; flat otherwise."""
    line = ema(daily_close, config.htf_ema)
    k = config.htf_slope_sessions
    if daily_close.size < config.htf_ema + k:
        return "unknown", {}
    close, now, then = float(daily_close[-1]), float(line[-1]), float(line[-1 - k])
    features = {"daily_close": close, "daily_ema": now, "daily_ema_slope": now - then}
    if close > now > then:
        return "up", features
    if close < now < then:
        return "down", features
    return "flat", features


def market_regime(enrichment: Enrichment, config: ContextConfig) -> tuple[Regime, dict[str, float]]:
    """volatile when the ATR 14 is at or above the `volatile_percentile` of its last
    `atr_lookback` values; else trending when the efficiency ratio reaches `trending_er`;
    else ranging. unknown with fewer than `min_atr_values` ATR values."""
    bars = ohlcv(enrichment.bars_tf)
    values = atr(bars.high, bars.low, bars.close, ATR_PERIOD)
    values = values[np.isfinite(values)][-config.atr_lookback :]
    if values.size < config.min_atr_values:
        return "unknown", {}
    percentile = 100.0 * float(np.mean(values <= values[-1]))
    er = efficiency_ratio(bars.close, config.er_period)
    features = {"atr14": float(values[-1]), "atr_percentile": percentile, "efficiency": er}
    if percentile >= config.volatile_percentile:
        return "volatile", features
    return ("trending" if er >= config.trending_er else "ranging"), features


def efficiency_ratio(close: FloatArray, n: int) -> float:
    """Kaufman's efficiency ratio over the last n changes: |net change| ÷ Σ|change|
    (0 when the price did not move or there are too few bars)."""
    if close.size < n + 1:
        return 0.0
    window = close[-(n + 1) :]
    path = float(np.sum(np.abs(np.diff(window))))
    return abs(float(window[-1] - window[0])) / path if path > 0 else 0.0


def session_phase(enrichment: Enrichment, config: ContextConfig) -> Phase:
    """opening in the first `opening_minutes` of the session, closing in the last
    `closing_minutes`, mid-day between; closed outside [session open, close)."""
    t, start, stop = enrichment.as_of, enrichment.session_open, enrichment.session_close
    if not start <= t < stop:
        return "closed"
    if t < start + timedelta(minutes=config.opening_minutes):
        return "opening"
    if t >= stop - timedelta(minutes=config.closing_minutes):
        return "closing"
    return "mid-day"


def opening_gap(enrichment: Enrichment, config: ContextConfig) -> tuple[Gap, float]:
    """The session's first regular-hours open against the previous daily close, in %:
    up/down beyond ±`gap_pct`, none within; unknown without either price."""
    opens = [
        b.open
        for b in enrichment.bars_1m
        if enrichment.session_open <= b.ts < enrichment.session_close
    ]
    previous = [b for b in enrichment.bars_1d if b.ts.date() < enrichment.session_open.date()]
    if not opens or not previous or previous[-1].close <= 0:
        return "unknown", math.nan
    pct = 100.0 * (opens[0] - previous[-1].close) / previous[-1].close
    if pct >= config.gap_pct:
        return "up", pct
    if pct <= -config.gap_pct:
        return "down", pct
    return "none", pct


def _bias(trend: Trend) -> Bias:
    if trend == "up":
        return "long"
    if trend == "down":
        return "short"
    return "neutral"


def _regime_points(config: ContextConfig, regime: Regime) -> float:
    return {
        "trending": config.trending_points,
        "ranging": config.ranging_points,
        "volatile": config.volatile_points,
    }.get(regime, 0.0)


def _phase_points(config: ContextConfig, phase: Phase) -> float:
    return {
        "mid-day": config.midday_points,
        "opening": config.opening_points,
        "closing": config.closing_points,
    }.get(phase, 0.0)


def _gap_points(config: ContextConfig, gap: Gap, trend: Trend) -> float:
    if gap == "none":
        return config.no_gap_points
    if gap == "unknown":
        return 0.0
    return config.gap_with_points if gap == trend else config.gap_against_points
