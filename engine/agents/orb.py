"""ORB, the opening-range-breakout specialist (rules: docs/agents.md, "ORB").

Active for SPY, QQQ and SPX with `enable_orb` on, in the regular session once the opening
range (the first `range_minutes`, default 15) is over, and when the last complete candle
of the signal's timeframe that started after the range closed outside it. Its bias is the
breakout's direction; confidence 0–100 grows with the breakout's distance (in range
widths), the candle's volume against its 20-candle average and a narrow range against the
daily ATR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from engine.agents.base import AgentDecision, Bias, Enrichment, Group
from engine.agents.candles import (
    daily_atr,
    prior_daily,
    signal_candles,
    signal_minutes,
    volume_ratio,
)
from engine.agents.scoring import clamp, config_record, flag_on
from engine.agents.series import finite, ohlcv
from engine.calendar import MarketCalendar, xnys_calendar
from engine.marketdata import Bar

FLAG: Final = "enable_orb"
VERSION: Final = "orb-1"
BASE: Final = 40.0  # a close outside the range
TERM: Final = 20.0  # each of distance, volume and range narrowness adds up to this
FULL_DISTANCE: Final = 0.5  # range widths beyond the edge that earn the whole distance term


@dataclass(frozen=True, slots=True)
class OrbConfig:
    range_minutes: int = 15
    symbols: tuple[str, ...] = ("SPY", "QQQ", "SPX")
    volume_lookback: int = 20
    atr_period: int = 14

    def __post_init__(self) -> None:
        if min(self.range_minutes, self.volume_lookback, self.atr_period) < 1:
            raise ValueError("range_minutes, volume_lookback and atr_period must be >= 1")


@dataclass(frozen=True, slots=True)
class _Breakout:
    bias: Bias
    high: float
    low: float
    candle: Bar
    volume_ratio: float
    daily_atr: float

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def distance(self) -> float:
        c = self.candle.close
        return c - self.high if self.bias == "long" else self.low - c


class OrbAgent:
    """The ORB specialist (group `specialist`, confidence 0–100)."""

    def __init__(
        self, config: OrbConfig | None = None, calendar: MarketCalendar | None = None
    ) -> None:
        self.config = config or OrbConfig()
        self._calendar = calendar or xnys_calendar()

    @property
    def name(self) -> str:
        return "orb"

    @property
    def group(self) -> Group:
        return "specialist"

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 100.0)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        return flag_on(flags, FLAG) and self._breakout(enrichment) is not None

    def decide(self, enrichment: Enrichment) -> AgentDecision | None:
        found = self._breakout(enrichment)
        return None if found is None else self._decision(found)

    def in_window(self, e: Enrichment) -> bool:
        """Its symbol, and regular hours after the opening range."""
        range_end = e.session_open + timedelta(minutes=self.config.range_minutes)
        return e.symbol.upper() in self.config.symbols and range_end <= e.as_of < e.session_close

    def _breakout(self, e: Enrichment) -> _Breakout | None:
        if signal_minutes(e) is None or not self.in_window(e):
            return None
        range_end = e.session_open + timedelta(minutes=self.config.range_minutes)
        opening = [b for b in e.bars_1m if e.session_open <= b.ts < range_end]
        candles = signal_candles(e, self._calendar)
        if not opening or not candles or candles[-1].ts < range_end:
            return None
        high, low = max(b.high for b in opening), min(b.low for b in opening)
        last = candles[-1]
        bias: Bias = "long" if last.close > high else "short" if last.close < low else "neutral"
        if bias == "neutral":
            return None
        ratio = volume_ratio(ohlcv(candles).volume, self.config.volume_lookback)
        datr = daily_atr(prior_daily(e), self.config.atr_period)
        return _Breakout(bias, high, low, last, ratio, datr)

    def _decision(self, b: _Breakout) -> AgentDecision:
        range_multiple = b.distance / b.width if b.width > 0 else math.inf
        width_atr = b.width / b.daily_atr if b.daily_atr > 0 else math.nan
        distance_term = TERM * clamp(range_multiple / FULL_DISTANCE, 0.0, 1.0)
        volume_term = TERM * clamp(b.volume_ratio - 1.0, 0.0, 1.0)
        narrow_term = TERM * clamp(1.0 - width_atr, 0.0, 1.0)
        confidence = clamp(BASE + distance_term + volume_term + narrow_term, *self.bounds)
        edge = "high" if b.bias == "long" else "low"
        minutes = self.config.range_minutes
        reasons = (
            f"close {b.candle.close:.2f} beyond the {minutes}-minute opening range {edge} "
            f"{b.high if b.bias == 'long' else b.low:.2f} ({range_multiple:.2f} range widths)",
            f"breakout candle volume {b.volume_ratio:.2f}x its {self.config.volume_lookback}"
            "-candle average",
            f"opening range {b.width:.2f} wide = {width_atr:.2f} daily ATR",
        )
        features = {
            "or_high": b.high,
            "or_low": b.low,
            "or_width": b.width,
            "close": b.candle.close,
            "distance": b.distance,
            "range_multiple": range_multiple,
            "atr_multiple": b.distance / b.daily_atr if b.daily_atr > 0 else math.nan,
            "daily_atr": b.daily_atr,
            "width_atr": width_atr,
            "volume_ratio": b.volume_ratio,
            "distance_term": distance_term,
            "volume_term": volume_term,
            "narrow_term": narrow_term,
        }
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias=b.bias,
            confidence=confidence,
            reasons=reasons,
            features=finite(features),
            config=config_record(self.config),
            version=VERSION,
        )
