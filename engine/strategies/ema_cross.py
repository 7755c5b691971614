"""`ema-cross`: long on a golden cross of EMA(fast) over EMA(slow), out on a death cross.

The EMAs (`engine.indicators.ema`, TA-Lib seeding) run over the whole regular-hours series
of the timeframe's closes, across sessions. A golden cross at bar k: fast[k] > slow[k] and
fast[k-1] <= slow[k-1]; a death cross: fast[k] < slow[k] and fast[k-1] >= slow[k-1]; never
with a NaN (warm-up). With the defaults (8, 21, 5 minutes, session_flat) the alerts are
those of `engine.alert_rules.generate_alerts` (rule `ema-cross-5m`), field for field but
`strategy`. docs/strategies.md has the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from engine.indicators import ema
from engine.strategies.base import F64, BoolArray, Param, Problem, bool_value, int_value
from engine.strategies.positions import Signals
from engine.strategies.rules import RuleStrategy, timeframe_param, timeframe_problems
from engine.strategies.sessions import TimeframeBars

NAME: Final = "ema-cross"


def crosses(fast: F64, slow: F64) -> tuple[BoolArray, BoolArray]:
    """(golden, death) as TradingView's ta.crossover / ta.crossunder of fast and slow."""
    golden = np.zeros(fast.size, dtype=np.bool_)
    death = np.zeros(fast.size, dtype=np.bool_)
    golden[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
    death[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
    return golden, death


class EmaCross(RuleStrategy):
    """EMA fast/slow cross, long only (module docstring)."""

    name = NAME
    version = "ema-cross-1"
    params = (
        Param("fast", "int", 8, 1, 200, "fast EMA period, in bars; below slow"),
        Param("slow", "int", 21, 2, 400, "slow EMA period, in bars"),
        timeframe_param(5),
        Param(
            "session_flat",
            "bool",
            True,
            description="close at each session's end; false holds overnight until a death cross",
        ),
    )

    def cross_rules(self, values: Mapping[str, object]) -> list[Problem]:
        problems = timeframe_problems(values)
        if int_value(values, "fast") >= int_value(values, "slow"):
            problems.append({"field": "fast", "problem": "must be less than slow"})
        return problems

    def timeframe_minutes(self, values: Mapping[str, object]) -> int:
        return int_value(values, "timeframe_minutes")

    def signals(self, bars: TimeframeBars, values: Mapping[str, object]) -> Signals:
        fast = ema(bars.close, int_value(values, "fast"))
        slow = ema(bars.close, int_value(values, "slow"))
        golden, death = crosses(fast, slow)
        return Signals(
            entry=golden,
            entry_comment="golden cross",
            exits=(("death cross", death),),
            session_flat=bool_value(values, "session_flat"),
        )
