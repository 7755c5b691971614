"""`vwap-mean-reversion` and `vwap-micro-mean-reversion`: long when price is stretched below
the session VWAP, out when it reverts (docs/strategies.md has the rule).

Session VWAP and its band width come from the session's regular-hours minute bars so far:
typical price tp = (high + low + close) / 3, VWAP = Σ v·tp / Σ v and σ = sqrt(Σ v·tp² / Σ v
− VWAP²), the volume-weighted standard deviation of tp − VWAP (TradingView's VWAP bands).
On the strategy's bars, read at each bar's last minute, the stretch is (VWAP − close) / σ
(or in percent of VWAP with `percent_bands`). Entry candidate: entry band <= stretch < stop
band, past the warm-up, not locked. Exits: "stop" (stretch >= stop band), "vwap reversion"
(close >= VWAP), the micro variant's time stop, session end. After the stretch reaches
the stop band, entries are locked until the close reverts to VWAP or a new session begins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from engine.strategies.base import (
    F64,
    I64,
    MINUTE_US,
    BoolArray,
    Param,
    Problem,
    bool_value,
    float_value,
    int_value,
)
from engine.strategies.positions import Signals, forward_fill
from engine.strategies.rules import RuleStrategy, timeframe_param, timeframe_problems
from engine.strategies.sessions import SessionMinutes, TimeframeBars

ENTRY_COMMENT: Final = "stretched below vwap"
STOP: Final = "stop"
REVERSION: Final = "vwap reversion"


def session_vwap(minutes: SessionMinutes) -> tuple[F64, F64]:
    """(VWAP, σ) at every regular-hours minute, over its session's minutes up to it.

    NaN while the session has traded no volume. Sums run on tp minus the session's first
    tp, so σ keeps its digits; σ is exactly 0 while every tp of the session is equal.
    """
    tp = (minutes.high + minutes.low + minutes.close) / 3.0
    if tp.size == 0:
        return tp.copy(), tp.copy()
    first = np.r_[True, minutes.session[1:] != minutes.session[:-1]]
    start = np.flatnonzero(first)[np.cumsum(first) - 1]
    cell = (np.cumsum(first) - 1, np.arange(tp.size) - start)  # (session, minute in it)
    x = tp - tp[start]
    v = minutes.volume
    volume, moment, square = (_session_sum(y, cell) for y in (v, v * x, v * x * x))
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(volume > 0, moment / volume, np.nan)
        variance = square / volume - shift * shift
    sd: F64 = np.sqrt(np.maximum(variance, 0.0))
    vwap: F64 = tp[start] + shift
    return vwap, sd


def _session_sum(y: F64, cell: tuple[I64, I64]) -> F64:
    """Running sum of y within each session: each session's values fill one row of a
    grid (zero-padded), summed along the row, so no sum carries over between sessions."""
    row, column = cell
    grid = np.zeros((int(row[-1]) + 1, int(column.max()) + 1))
    grid[row, column] = y
    np.cumsum(grid, axis=1, out=grid)
    out: F64 = grid[row, column]
    return out


def _band_params(
    entry_sd: float, stop_sd: float, entry_pct: float, stop_pct: float
) -> tuple[Param, ...]:
    return (
        Param("percent_bands", "bool", False, description="bands in percent of VWAP, not in σ"),
        Param("entry_sd", "float", entry_sd, 0.25, 6.0, "entry band, in σ below VWAP"),
        Param("stop_sd", "float", stop_sd, 0.5, 10.0, "stop band, in σ below VWAP; above entry_sd"),
        Param("entry_pct", "float", entry_pct, 0.01, 5.0, "entry band, in % below VWAP"),
        Param(
            "stop_pct", "float", stop_pct, 0.02, 10.0, "stop band, in % below VWAP; above entry_pct"
        ),
    )


def _warmup_param(default: int) -> Param:
    return Param(
        "warmup_minutes", "int", default, 0, 300, "no entry on a bar opening sooner after the open"
    )


class VwapMeanReversion(RuleStrategy):
    """Session-VWAP mean reversion on bars of `timeframe_minutes` (module docstring)."""

    name = "vwap-mean-reversion"
    version = "vwap-mean-reversion-1"
    params = (timeframe_param(5), *_band_params(2.0, 3.0, 0.5, 1.0), _warmup_param(30))

    def cross_rules(self, values: Mapping[str, object]) -> list[Problem]:
        problems = timeframe_problems(values) if "timeframe_minutes" in values else []
        for unit in ("sd", "pct"):
            if float_value(values, f"stop_{unit}") <= float_value(values, f"entry_{unit}"):
                problems.append({"field": f"stop_{unit}", "problem": f"must be above entry_{unit}"})
        return problems

    def timeframe_minutes(self, values: Mapping[str, object]) -> int:
        return int_value(values, "timeframe_minutes")

    def max_hold_minutes(self, values: Mapping[str, object]) -> int | None:
        """The time stop, in minutes from the entry bar's open; None: no time stop."""
        return None

    def signals(self, bars: TimeframeBars, values: Mapping[str, object]) -> Signals:
        stretch, reversion = self.stretch(bars, values)
        unit = "pct" if bool_value(values, "percent_bands") else "sd"
        entry_band, stop_band = (float_value(values, f"{k}_{unit}") for k in ("entry", "stop"))
        stop = stretch >= stop_band
        locked = forward_fill(stop, reversion | bars.first)
        warm = (
            bars.ts - bars.minutes.opens[bars.session]
            >= int_value(values, "warmup_minutes") * MINUTE_US
        )
        entry = (stretch >= entry_band) & (stretch < stop_band) & warm & ~locked
        return Signals(
            entry=entry,
            entry_comment=ENTRY_COMMENT,
            exits=((STOP, stop), (REVERSION, reversion)),
            max_hold_minutes=self.max_hold_minutes(values),
        )

    def stretch(self, bars: TimeframeBars, values: Mapping[str, object]) -> tuple[F64, BoolArray]:
        """(stretch below VWAP in the band unit, close >= VWAP) at each bar's close."""
        vwap, sd = session_vwap(bars.minutes)
        vwap, sd = vwap[bars.last_minute], sd[bars.last_minute]
        gap = vwap - bars.close
        with np.errstate(invalid="ignore", divide="ignore"):
            if bool_value(values, "percent_bands"):
                stretch = gap / vwap * 100.0
            else:
                stretch = np.where(sd > 0, gap / sd, np.nan)
        return stretch, bars.close >= vwap


class VwapMicroMeanReversion(VwapMeanReversion):
    """The same rule on 1-minute bars, with tighter bands and a time stop."""

    name = "vwap-micro-mean-reversion"
    version = "vwap-micro-mean-reversion-1"
    params = (
        *_band_params(1.5, 2.5, 0.2, 0.4),
        _warmup_param(15),
        Param(
            "max_hold_minutes", "int", 15, 1, 390, "time stop, minutes after the entry bar's open"
        ),
    )

    def timeframe_minutes(self, values: Mapping[str, object]) -> int:
        return 1

    def max_hold_minutes(self, values: Mapping[str, object]) -> int | None:
        return int_value(values, "max_hold_minutes")
