"""TTM squeeze specialist (rules: docs/agents.md, "TTM squeeze").

On the signal timeframe's complete candles, the squeeze is on while Bollinger(20, 2) lies
inside Keltner(20, 1.5) (`engine.indicators`). With `enable_ttm` on it is active on a
release, the squeeze on at the previous candle and off at the last, when the squeeze
momentum is on the alert's side of zero. Confidence 0–80 rates the release: how long the
squeeze lasted, how fast momentum moves toward the alert and how far it is from zero, both
in ATR(14) units of the candles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from engine.agents.base import AgentDecision, Bias, Enrichment, Group
from engine.agents.candles import signal_candles
from engine.agents.scoring import clamp, config_record, direction_of, flag_on, sign
from engine.agents.series import finite, ohlcv
from engine.calendar import MarketCalendar, xnys_calendar
from engine.indicators import BoolArray, atr, bollinger, keltner, squeeze_momentum, squeeze_on

FLAG: Final = "enable_ttm"
VERSION: Final = "ttm-1"
BASE: Final = 20.0  # a release with aligned momentum
LENGTH_WEIGHT: Final = 30.0  # × min(1, candles squeezed / full_length)
SLOPE_WEIGHT: Final = 20.0  # × clamp(momentum change toward the alert in ATR / full_slope)
LEVEL_WEIGHT: Final = 10.0  # × clamp(|momentum| in ATR / full_level)


@dataclass(frozen=True, slots=True)
class TtmConfig:
    period: int = 20
    bb_mult: float = 2.0
    kc_mult: float = 1.5
    atr_period: int = 14
    full_length: int = 15  # candles squeezed that earn the whole length term
    full_slope: float = 0.25  # momentum change per candle, in ATR, that earns the slope term
    full_level: float = 0.5  # |momentum| in ATR that earns the level term

    def __post_init__(self) -> None:
        if self.period < 2 or self.atr_period < 1 or self.full_length < 1:
            raise ValueError("period must be >= 2, atr_period and full_length >= 1")
        if min(self.bb_mult, self.kc_mult, self.full_slope, self.full_level) <= 0:
            raise ValueError("multipliers and full_* scales must be > 0")


@dataclass(frozen=True, slots=True)
class _Release:
    bias: Bias
    length: int
    momentum: float
    previous: float
    atr: float


def squeeze_length(on: BoolArray, end: int) -> int:
    """How many consecutive candles the squeeze was on, ending at index `end`."""
    off = np.flatnonzero(~on[: end + 1])
    return end + 1 if off.size == 0 else end - int(off[-1])


class TtmAgent:
    """The TTM squeeze specialist (group `specialist`, confidence 0–80)."""

    def __init__(
        self, config: TtmConfig | None = None, calendar: MarketCalendar | None = None
    ) -> None:
        self.config = config or TtmConfig()
        self._calendar = calendar or xnys_calendar()

    @property
    def name(self) -> str:
        return "ttm"

    @property
    def group(self) -> Group:
        return "specialist"

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 80.0)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        return flag_on(flags, FLAG) and self._release(enrichment) is not None

    def decide(self, enrichment: Enrichment) -> AgentDecision | None:
        release = self._release(enrichment)
        return None if release is None else self._decision(release)

    def _release(self, e: Enrichment) -> _Release | None:
        cfg = self.config
        bars = ohlcv(signal_candles(e, self._calendar))
        if len(bars) < 2:
            return None
        h, lo, c = bars.high, bars.low, bars.close
        on = squeeze_on(
            bollinger(c, cfg.period, cfg.bb_mult), keltner(h, lo, c, cfg.period, cfg.kc_mult)
        )
        momentum = squeeze_momentum(h, lo, c, cfg.period)
        last, previous = float(momentum[-1]), float(momentum[-2])
        if not (on[-2] and not on[-1]) or direction_of(last) != e.direction:
            return None
        return _Release(
            bias=e.direction,
            length=squeeze_length(on, on.size - 2),
            momentum=last,
            previous=previous,
            atr=float(atr(h, lo, c, cfg.atr_period)[-1]),
        )

    def _decision(self, r: _Release) -> AgentDecision:
        cfg = self.config
        usable_atr = r.atr if r.atr > 0 else math.nan
        slope = sign(r.bias) * (r.momentum - r.previous) / usable_atr
        level = abs(r.momentum) / usable_atr
        length_term = LENGTH_WEIGHT * min(1.0, r.length / cfg.full_length)
        slope_term = SLOPE_WEIGHT * clamp(slope / cfg.full_slope, 0.0, 1.0)
        level_term = LEVEL_WEIGHT * clamp(level / cfg.full_level, 0.0, 1.0)
        features = {
            "squeeze_length": float(r.length),
            "momentum": r.momentum,
            "momentum_previous": r.previous,
            "atr": r.atr,
            "slope_atr": slope,
            "momentum_atr": level,
            "length_term": length_term,
            "slope_term": slope_term,
            "level_term": level_term,
        }
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias=r.bias,
            confidence=clamp(BASE + length_term + slope_term + level_term, *self.bounds),
            reasons=(
                f"squeeze released after {r.length} candles on",
                f"momentum {r.momentum:+.4f} (was {r.previous:+.4f}) with the {r.bias} alert",
                f"momentum change {slope:+.2f} ATR, level {level:.2f} ATR",
            ),
            features=finite(features),
            config=config_record(self.config),
            version=VERSION,
        )
