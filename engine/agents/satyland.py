"""Satyland sub-agent (rules: docs/agents.md, "Satyland").

On the signal timeframe's complete candles: the pivot ribbon (EMA 8/13/21/48/200 in
order), the position of price among the ATR levels (previous daily close ±
{0.236, 0.382, 0.618, 1.0} × daily ATR 14), the phase oscillator (EMA 3 of
100 × (close − EMA 21) ÷ (3 × ATR 14)) and volume against its 20-candle average. The three
directional scores are weighed into one score in [−1, 1]: its sign is the bias, its size
the confidence (20–90). Active whenever `enable_satyland` is on and the oscillator is
defined; it never vetoes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

import numpy as np

from engine.agents.base import AgentDecision, Bias, Enrichment, Group
from engine.agents.candles import daily_atr, prior_daily, signal_candles, volume_ratio
from engine.agents.scoring import clamp, config_record, flag_on
from engine.agents.series import Ohlcv, finite, ohlcv
from engine.calendar import MarketCalendar, xnys_calendar
from engine.indicators import FloatArray, atr, ema

FLAG: Final = "enable_satyland"
VERSION: Final = "satyland-1"
RIBBON: Final = (8, 13, 21, 48, 200)
LEVELS: Final = (0.236, 0.382, 0.618, 1.0)
TRIGGER, FULL_ATR = LEVELS[0], LEVELS[-1]
PHASE_SCALE: Final = 61.8  # oscillator value that counts as a full score
PHASE_EXTENDED: Final = 100.0  # beyond ±100 the move is extended
BASE: Final = 20.0
SCORE_WEIGHT: Final = 55.0  # × |score|
VOLUME_WEIGHT: Final = 10.0  # × clamp(volume ratio − 1, 0, 1)
NOT_EXTENDED: Final = 5.0


@dataclass(frozen=True, slots=True)
class SatylandConfig:
    ribbon_weight: float = 0.4
    levels_weight: float = 0.3
    phase_weight: float = 0.3
    neutral_band: float = 0.15  # |score| below this: neutral bias
    volume_lookback: int = 20
    atr_period: int = 14

    def __post_init__(self) -> None:
        weights = (self.ribbon_weight, self.levels_weight, self.phase_weight)
        if min(weights) < 0 or not math.isclose(sum(weights), 1.0):
            raise ValueError(f"weights must be >= 0 and sum to 1, got {weights}")
        if not 0 <= self.neutral_band < 1 or min(self.volume_lookback, self.atr_period) < 1:
            raise ValueError("neutral_band must be in [0, 1), lookback and period >= 1")


def ribbon_score(values: tuple[float, ...]) -> float:
    """(bullish − bearish adjacent pairs) ÷ pairs over the defined EMAs, fastest first: +1
    when stacked 8 > 13 > 21 > 48 (> 200), −1 when stacked the other way."""
    defined = [v for v in values if math.isfinite(v)]
    pairs = list(pairwise(defined))
    if not pairs:
        return 0.0
    return sum((fast > slow) - (fast < slow) for fast, slow in pairs) / len(pairs)


def level_score(position: float) -> float:
    """+1 between the +0.236 trigger and +1 ATR, −1 between −0.236 and −1 ATR, 0 in the
    neutral zone, beyond a full ATR (the day's range used up) or when unknown."""
    if not math.isfinite(position) or abs(position) < TRIGGER or abs(position) >= FULL_ATR:
        return 0.0
    return math.copysign(1.0, position)


def phase_oscillator(bars: Ohlcv, atr_period: int = 14) -> FloatArray:
    """EMA 3 of 100 × (close − EMA 21) ÷ (3 × ATR); NaN in the warm-up, 0 where ATR is 0."""
    c = bars.close
    mid, width = ema(c, 21), 3.0 * atr(bars.high, bars.low, c, atr_period)
    defined = np.isfinite(mid) & np.isfinite(width)
    raw = np.full(c.size, np.nan)
    safe = np.where(width > 0, width, 1.0)
    raw[defined] = np.where(width[defined] > 0, 100.0 * (c - mid)[defined] / safe[defined], 0.0)
    out = np.full(c.size, np.nan)
    if defined.any():
        first = int(np.argmax(defined))
        out[first:] = ema(raw[first:], 3)
    return out


@dataclass(frozen=True, slots=True)
class _Reading:
    close: float
    emas: tuple[float, ...]
    prev_close: float
    daily_atr: float
    phase: float
    volume_ratio: float


class SatylandAgent:
    """The Satyland sub-agent (group `sub`, confidence 20–90, never a veto)."""

    def __init__(
        self, config: SatylandConfig | None = None, calendar: MarketCalendar | None = None
    ) -> None:
        self.config = config or SatylandConfig()
        self._calendar = calendar or xnys_calendar()

    @property
    def name(self) -> str:
        return "satyland"

    @property
    def group(self) -> Group:
        return "sub"

    @property
    def bounds(self) -> tuple[float, float]:
        return (20.0, 90.0)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        return flag_on(flags, FLAG) and self._read(enrichment) is not None

    def decide(self, enrichment: Enrichment) -> AgentDecision | None:
        reading = self._read(enrichment)
        return None if reading is None else self._decision(reading)

    def _read(self, e: Enrichment) -> _Reading | None:
        bars = ohlcv(signal_candles(e, self._calendar))
        if len(bars) == 0:
            return None
        phase = float(phase_oscillator(bars, self.config.atr_period)[-1])
        if not math.isfinite(phase):
            return None
        daily = prior_daily(e)
        return _Reading(
            close=float(bars.close[-1]),
            emas=tuple(float(ema(bars.close, p)[-1]) for p in RIBBON),
            prev_close=daily[-1].close if daily else math.nan,
            daily_atr=daily_atr(daily, self.config.atr_period),
            phase=phase,
            volume_ratio=volume_ratio(bars.volume, self.config.volume_lookback),
        )

    def _decision(self, r: _Reading) -> AgentDecision:
        cfg = self.config
        position = (r.close - r.prev_close) / r.daily_atr if r.daily_atr > 0 else math.nan
        ribbon, levels = ribbon_score(r.emas), level_score(position)
        phase = clamp(r.phase / PHASE_SCALE, -1.0, 1.0)
        score = cfg.ribbon_weight * ribbon + cfg.levels_weight * levels + cfg.phase_weight * phase
        extended = abs(r.phase) >= PHASE_EXTENDED
        volume = clamp(r.volume_ratio - 1.0, 0.0, 1.0)
        confidence = (
            BASE
            + SCORE_WEIGHT * abs(score)
            + VOLUME_WEIGHT * volume
            + NOT_EXTENDED * (not extended)
        )
        bias: Bias = (
            "neutral" if abs(score) < cfg.neutral_band else "long" if score > 0 else "short"
        )
        features = {
            **{f"ema{p}": v for p, v in zip(RIBBON, r.emas, strict=True)},
            **_levels(r.prev_close, r.daily_atr),
            "close": r.close,
            "prev_close": r.prev_close,
            "daily_atr": r.daily_atr,
            "atr_position": position,
            "phase": r.phase,
            "volume_ratio": r.volume_ratio,
            "ribbon_score": ribbon,
            "level_score": levels,
            "phase_score": phase,
            "score": score,
        }
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias=bias,
            confidence=clamp(confidence, *self.bounds),
            reasons=(
                f"pivot ribbon score {ribbon:+.2f}",
                f"price {position:+.3f} daily ATR from the previous close (score {levels:+.0f})",
                f"phase oscillator {r.phase:+.1f}{' (extended)' if extended else ''}",
                f"volume {r.volume_ratio:.2f}x its {cfg.volume_lookback}-candle average",
            ),
            features=finite(features),
            config=config_record(cfg),
            version=VERSION,
        )


def _levels(prev_close: float, daily_atr: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for level in LEVELS:
        key = f"{level:.3f}".replace(".", "_")
        out[f"level_up_{key}"] = prev_close + level * daily_atr
        out[f"level_down_{key}"] = prev_close - level * daily_atr
    return out
