"""The Technical agent (core): EMA 8/13/21/48/200 stack, ATR, Bollinger and Keltner position.

Reads the signal's timeframe bars (`Enrichment.bars_tf`); rules and confidence formula in
docs/agents.md, "Technical". Confidence lies in 0–90.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from engine.agents.base import AgentDecision, Bias, Enrichment, Group
from engine.agents.series import finite, last, ohlcv
from engine.indicators import (
    ATR_PERIOD,
    BB_MULT,
    EMA_PERIODS,
    KC_MULT,
    SQUEEZE_PERIOD,
    atr,
    bollinger,
    ema,
    keltner,
)

VERSION = "technical/1"


@dataclass(frozen=True, slots=True)
class TechnicalConfig:
    """Points of each component (they sum to the upper bound, 90) and the stack cut-off."""

    stack_points: float = 50.0
    location_points: float = 20.0
    band_points: float = 20.0
    stretch_penalty: float = 10.0
    min_stack_score: float = 0.5

    def __post_init__(self) -> None:
        points = (self.stack_points, self.location_points, self.band_points)
        if min(*points, self.stretch_penalty) < 0 or sum(points) > 90.0:
            raise ValueError(f"points must be >= 0 and sum to at most 90, got {self}")
        if not 0.0 < self.min_stack_score <= 1.0:
            raise ValueError(f"min_stack_score must be in (0, 1], got {self.min_stack_score}")


@dataclass(frozen=True, slots=True)
class _Reading:
    close: float
    emas: tuple[float, ...]
    atr14: float
    pct_b: float
    keltner_pos: float

    @property
    def pairs(self) -> list[float]:
        """sign(faster − slower) of each adjacent EMA pair where both are defined."""
        e = self.emas
        return [
            float(np.sign(e[i] - e[i + 1]))
            for i in range(len(e) - 1)
            if math.isfinite(e[i]) and math.isfinite(e[i + 1])
        ]


class TechnicalAgent:
    """Core agent: always active; votes with the EMA stack's direction (docs/agents.md)."""

    def __init__(self, config: TechnicalConfig | None = None) -> None:
        self._config = config or TechnicalConfig()

    @property
    def name(self) -> str:
        return "technical"

    @property
    def group(self) -> Group:
        return "core"

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 90.0)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        return True

    def decide(self, enrichment: Enrichment) -> AgentDecision:
        reading = _read(enrichment)
        pairs = reading.pairs
        max_pairs = len(EMA_PERIODS) - 1
        stack = sum(pairs) / len(pairs) if pairs else 0.0
        features = {
            "bars": float(len(enrichment.bars_tf)),
            "close": reading.close,
            **{f"ema{p}": v for p, v in zip(EMA_PERIODS, reading.emas, strict=True)},
            "atr14": reading.atr14,
            "atr_pct": 100.0 * reading.atr14 / reading.close if reading.close > 0 else math.nan,
            "stack_score": stack,
            "stack_pairs": float(len(pairs)),
            "pct_b": reading.pct_b,
            "keltner_pos": reading.keltner_pos,
        }
        cfg = self._config
        if len(pairs) < 2:
            return self._decision("neutral", 0.0, ("insufficient history for EMA 21",), features)
        if abs(stack) < cfg.min_stack_score:
            return self._decision("neutral", 0.0, (f"mixed EMA stack ({stack:+.2f})",), features)
        bias: Bias = "long" if stack > 0 else "short"
        d = 1.0 if stack > 0 else -1.0
        parts = {
            "stack": cfg.stack_points * abs(stack) * len(pairs) / max_pairs,
            "location": cfg.location_points if d * (reading.close - reading.emas[2]) > 0 else 0.0,
            "band": cfg.band_points * _clip01(d * reading.keltner_pos),
            "stretch": -cfg.stretch_penalty if _stretched(d, reading.pct_b) else 0.0,
        }
        confidence = min(max(sum(parts.values()), 0.0), self.bounds[1])
        features |= {f"points_{k}": v for k, v in parts.items()}
        reasons = (
            f"EMA stack {stack:+.2f} over {len(pairs)} of {max_pairs} pairs",
            f"close {'beyond' if parts['location'] else 'not beyond'} EMA 21",
            f"Keltner position {reading.keltner_pos:+.2f}, Bollinger %B {reading.pct_b:.2f}",
        )
        return self._decision(bias, confidence, reasons, features)

    def _decision(
        self, bias: Bias, confidence: float, reasons: tuple[str, ...], features: dict[str, float]
    ) -> AgentDecision:
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias=bias,
            confidence=confidence,
            reasons=reasons,
            features=finite(features),
            config=asdict(self._config),
            version=VERSION,
        )


def _read(enrichment: Enrichment) -> _Reading:
    bars = ohlcv(enrichment.bars_tf)
    h, lo, c = bars.high, bars.low, bars.close
    close = last(c)
    bb = bollinger(c, SQUEEZE_PERIOD, BB_MULT)
    kc = keltner(h, lo, c, SQUEEZE_PERIOD, KC_MULT)
    bb_width = last(bb.upper) - last(bb.lower)
    kc_half = last(kc.upper) - last(kc.middle)
    return _Reading(
        close=close,
        emas=tuple(last(ema(c, p)) for p in EMA_PERIODS),
        atr14=last(atr(h, lo, c, ATR_PERIOD)),
        pct_b=(close - last(bb.lower)) / bb_width if bb_width > 0 else math.nan,
        keltner_pos=(close - last(kc.middle)) / kc_half if kc_half > 0 else math.nan,
    )


def _clip01(x: float) -> float:
    return min(max(x, 0.0), 1.0) if math.isfinite(x) else 0.0


def _stretched(direction: float, pct_b: float) -> bool:
    """Closed outside the Bollinger band on the bias side (%B > 1 long, < 0 short)."""
    return math.isfinite(pct_b) and direction * (pct_b - 0.5) > 0.5
