"""The Strat specialist (Rob Smith's The Strat; rules: docs/agents.md, "Strat").

Each candle of the signal's timeframe is typed against the one before it: 1 inside
(takes out neither the high nor the low), 2u / 2d directional (takes out one side), 3
outside (takes out both). With `enable_strat` on it is active when the last three
complete candles form 2-1-2, 3-1-2 or 3-2-2 (the last 2 opposite the middle one); the
bias is the last candle's direction. Confidence 15–95 adds higher-timeframe continuity
(the colour of the 15m, 60m and daily candles in progress), wick rejection on the
trigger candle and TTM momentum confirmation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

from engine.agents.base import AgentDecision, Bias, Enrichment, Group
from engine.agents.candles import session_candle, session_candles, signal_candles, signal_minutes
from engine.agents.scoring import clamp, config_record, direction_of, flag_on, sign
from engine.agents.series import finite, ohlcv
from engine.calendar import MarketCalendar, xnys_calendar
from engine.indicators import ttm_squeeze
from engine.marketdata import Bar

CandleType = Literal["1", "2u", "2d", "3"]

FLAG: Final = "enable_strat"
VERSION: Final = "strat-1"
BASE: Final = 45.0
CONTINUATION: Final = 5.0  # a 2-1-2 whose first 2 points the same way
HTF_WEIGHT: Final = 20.0  # × (aligned − opposed) / higher timeframes
WICK_WEIGHT: Final = 10.0  # × +1 rejection for the bias, −1 against it
TTM_SIGN: Final = 10.0  # squeeze momentum on the bias's side of zero
TTM_SLOPE: Final = 5.0  # squeeze momentum moving toward the bias
WICK_SHARE: Final = 0.5  # a wick of at least this share of the candle's range rejects


def candle_type(previous: Bar, candle: Bar) -> CandleType:
    """The Strat type of `candle` against `previous` (equal highs or lows are not taken
    out)."""
    up, down = candle.high > previous.high, candle.low < previous.low
    if up and down:
        return "3"
    if up:
        return "2u"
    return "2d" if down else "1"


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str  # "2-1-2", "3-1-2" or "3-2-2"
    types: tuple[CandleType, CandleType, CandleType]
    bias: Bias
    continuation: bool


def strat_pattern(types: Sequence[CandleType]) -> Pattern | None:
    """The pattern the last three candle types form, or None."""
    if len(types) < 3:
        return None
    first, middle, last = types[-3], types[-2], types[-1]
    if last not in ("2u", "2d"):
        return None
    bias: Bias = "long" if last == "2u" else "short"
    trio = (first, middle, last)
    if middle == "1" and first in ("2u", "2d"):
        return Pattern("2-1-2", trio, bias, continuation=first == last)
    if middle == "1" and first == "3":
        return Pattern("3-1-2", trio, bias, continuation=False)
    if first == "3" and middle in ("2u", "2d") and middle != last:
        return Pattern("3-2-2", trio, bias, continuation=False)
    return None


def wick_rejection(candle: Bar, bias: Bias) -> float:
    """+1 when the wick on the far side of the bias (the lower wick for long) is at least
    half the candle's range, −1 when the wick on the bias's side is, else 0."""
    span = candle.high - candle.low
    if span <= 0 or bias == "neutral":
        return 0.0
    lower = (min(candle.open, candle.close) - candle.low) / span
    upper = (candle.high - max(candle.open, candle.close)) / span
    supporting, opposing = (lower, upper) if bias == "long" else (upper, lower)
    return float(supporting >= WICK_SHARE) - float(opposing >= WICK_SHARE)


@dataclass(frozen=True, slots=True)
class StratConfig:
    higher_minutes: tuple[int, ...] = (15, 60)  # plus the daily candle
    squeeze_period: int = 20

    def __post_init__(self) -> None:
        if any(m < 1 for m in self.higher_minutes) or self.squeeze_period < 2:
            raise ValueError("higher_minutes must be >= 1 and squeeze_period >= 2")


@dataclass(frozen=True, slots=True)
class _Reading:
    pattern: Pattern
    candles: tuple[Bar, Bar, Bar]
    higher: Mapping[str, float]  # label → +1 / −1 / 0: the HTF candle's colour
    momentum: float
    momentum_change: float


class StratAgent:
    """The Strat specialist (group `specialist`, confidence 15–95)."""

    def __init__(
        self, config: StratConfig | None = None, calendar: MarketCalendar | None = None
    ) -> None:
        self.config = config or StratConfig()
        self._calendar = calendar or xnys_calendar()

    @property
    def name(self) -> str:
        return "strat"

    @property
    def group(self) -> Group:
        return "specialist"

    @property
    def bounds(self) -> tuple[float, float]:
        return (15.0, 95.0)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        return flag_on(flags, FLAG) and self._read(enrichment) is not None

    def decide(self, enrichment: Enrichment) -> AgentDecision | None:
        reading = self._read(enrichment)
        return None if reading is None else self._decision(reading)

    def _read(self, e: Enrichment) -> _Reading | None:
        candles = signal_candles(e, self._calendar)
        if len(candles) < 4:
            return None
        last4 = candles[-4:]
        types = [candle_type(a, b) for a, b in pairwise(last4)]
        pattern = strat_pattern(types)
        if pattern is None:
            return None
        bars = ohlcv(candles)
        squeeze = ttm_squeeze(bars.high, bars.low, bars.close, self.config.squeeze_period)
        momentum = squeeze.momentum
        return _Reading(
            pattern=pattern,
            candles=(last4[1], last4[2], last4[3]),
            higher=self._higher_colours(e),
            momentum=float(momentum[-1]),
            momentum_change=float(momentum[-1] - momentum[-2]),
        )

    def _higher_colours(self, e: Enrichment) -> dict[str, float]:
        """Colour (+1 green, −1 red, 0 flat) of the candle in progress on each timeframe
        longer than the signal's: the configured minutes, then the session's day."""
        minutes = signal_minutes(e)
        if minutes is None:
            return {}
        colours: dict[str, float] = {}
        for m in self.config.higher_minutes:
            if m > minutes:
                found = session_candles(e, m, self._calendar)
                if found:
                    colours[f"{m}m"] = _colour(found[-1])
        today = session_candle(e)
        if today is not None:
            colours["1d"] = _colour(today)
        return colours

    def _decision(self, r: _Reading) -> AgentDecision:
        p = r.pattern
        s = sign(p.bias)
        aligned = sum(1 for c in r.higher.values() if c == s)
        opposed = sum(1 for c in r.higher.values() if c == -s)
        htf = (aligned - opposed) / len(r.higher) if r.higher else 0.0
        wick = wick_rejection(r.candles[-1], p.bias)
        ttm = TTM_SIGN * float(direction_of(r.momentum) == p.bias) + TTM_SLOPE * float(
            r.momentum_change * s > 0
        )
        raw = BASE + CONTINUATION * p.continuation + HTF_WEIGHT * htf + WICK_WEIGHT * wick + ttm
        features = {
            "htf_score": htf,
            "htf_aligned": float(aligned),
            "htf_opposed": float(opposed),
            "wick_score": wick,
            "ttm_momentum": r.momentum,
            "ttm_momentum_change": r.momentum_change,
            "ttm_term": ttm,
            "continuation": float(p.continuation),
            **{f"htf_{label}": colour for label, colour in r.higher.items()},
            **_candle_features(r.candles),
        }
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias=p.bias,
            confidence=clamp(raw, *self.bounds),
            reasons=_reasons(r, htf, wick, ttm),
            features=finite(features),
            config=config_record(self.config),
            version=VERSION,
        )


def _colour(candle: Bar) -> float:
    return 1.0 if candle.close > candle.open else -1.0 if candle.close < candle.open else 0.0


def _candle_features(candles: Sequence[Bar]) -> dict[str, float]:
    out: dict[str, float] = {}
    for i, c in enumerate(candles, start=1):
        out |= {f"c{i}_high": c.high, f"c{i}_low": c.low, f"c{i}_close": c.close}
    return out


def _reasons(r: _Reading, htf: float, wick: float, ttm: float) -> tuple[str, ...]:
    p = r.pattern
    kind = " continuation" if p.continuation else " reversal" if p.name != "3-1-2" else ""
    colours = ", ".join(
        f"{k} {'green' if v > 0 else 'red' if v < 0 else 'flat'}" for k, v in r.higher.items()
    )
    return (
        f"{p.name}{kind} ({'-'.join(p.types)}) triggered {p.bias}",
        f"higher timeframes: {colours or 'none'} (score {htf:+.2f})",
        f"wick rejection score {wick:+.0f}",
        f"TTM momentum {r.momentum:+.4f}, change {r.momentum_change:+.4f} (+{ttm:.0f})"
        if not math.isnan(r.momentum)
        else "TTM momentum not yet defined",
    )
