"""`ttm-squeeze`: long when a TTM squeeze releases with momentum up, out when momentum
falls two bars in a row (docs/strategies.md has the rule).

On the timeframe's regular-hours bars, over the whole series across sessions
(`engine.indicators.ttm_squeeze`): the squeeze is on while Bollinger(period, bb_mult)
lies strictly inside Keltner(period, kc_mult × ATR(period)); momentum is LINEARREG(period)
of close − ((highest high + lowest low) / 2 + SMA(close)) / 2. A release at bar k: on at
k−1 for at least `min_squeeze_bars` bars in a row, off at k. Entry candidate: a release
with momentum[k] > 0 and momentum[k] > momentum[k−1]. Exit: momentum[k] < momentum[k−1]
< momentum[k−2] ("momentum falling"), or session end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from engine.indicators import Squeeze, ttm_squeeze
from engine.strategies.base import I64, BoolArray, Param, Problem, float_value, int_value
from engine.strategies.positions import Signals
from engine.strategies.rules import RuleStrategy, timeframe_param, timeframe_problems
from engine.strategies.sessions import TimeframeBars

ENTRY_COMMENT: Final = "squeeze release"
MOMENTUM_FALLING: Final = "momentum falling"


def run_lengths(on: BoolArray) -> I64:
    """How many bars in a row `on` has been True, ending at each bar (0 where False)."""
    index = np.arange(on.size)
    last_off = np.maximum.accumulate(np.where(on, -1, index)) if on.size else index
    runs: I64 = np.where(on, index - last_off, 0)
    return runs


def releases(on: BoolArray, min_bars: int) -> BoolArray:
    """True at bar k when the squeeze was on for at least `min_bars` bars up to k−1 and is
    off at k."""
    out = np.zeros(on.size, dtype=np.bool_)
    out[1:] = (run_lengths(on)[:-1] >= min_bars) & ~on[1:]
    return out


class TtmSqueeze(RuleStrategy):
    """TTM squeeze release, long only (module docstring)."""

    name = "ttm-squeeze"
    version = "ttm-squeeze-1"
    params = (
        timeframe_param(5),
        Param("period", "int", 20, 2, 100, "Bollinger, Keltner, ATR and momentum period"),
        Param("bb_mult", "float", 2.0, 0.5, 5.0, "Bollinger width, in standard deviations"),
        Param("kc_mult", "float", 1.5, 0.5, 5.0, "Keltner width, in ATRs"),
        Param("min_squeeze_bars", "int", 5, 1, 100, "bars the squeeze must be on before"),
    )

    def cross_rules(self, values: Mapping[str, object]) -> list[Problem]:
        return timeframe_problems(values)

    def timeframe_minutes(self, values: Mapping[str, object]) -> int:
        return int_value(values, "timeframe_minutes")

    def squeeze(self, bars: TimeframeBars, values: Mapping[str, object]) -> Squeeze:
        """The squeeze (on/off) and its momentum over `bars`, for validated `values`."""
        return ttm_squeeze(
            bars.high,
            bars.low,
            bars.close,
            int_value(values, "period"),
            bb_mult=float_value(values, "bb_mult"),
            kc_mult=float_value(values, "kc_mult"),
        )

    def signals(self, bars: TimeframeBars, values: Mapping[str, object]) -> Signals:
        sq = self.squeeze(bars, values)
        mom = sq.momentum
        rising = np.zeros(mom.size, dtype=np.bool_)
        rising[1:] = mom[1:] > mom[:-1]
        falling = np.zeros(mom.size, dtype=np.bool_)
        falling[2:] = (mom[2:] < mom[1:-1]) & (mom[1:-1] < mom[:-2])
        entry = releases(sq.on, int_value(values, "min_squeeze_bars")) & (mom > 0) & rising
        return Signals(
            entry=entry, entry_comment=ENTRY_COMMENT, exits=((MOMENTUM_FALLING, falling),)
        )
