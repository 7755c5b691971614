"""Performance metrics of a backtest: from an equity curve and its round-trip P&Ls.

Inputs. The equity curve is one value per session close, in time order; its first point
may be the start of the run (the capital before the first session), so that the first
session has a return. The round trips are the realised P&L of each closed position, net
of fees. Nothing here reads a file or a clock.

Curve metrics (e_0 … e_n the equity values, r_t = e_t / e_{t-1} − 1 the n daily returns):

- total return = e_n / e_0 − 1 (None without a point or when e_0 <= 0);
- annualised Sharpe = mean(r) / std(r) × √252, risk-free rate 0, std the sample standard
  deviation (ddof = 1). None with fewer than 2 returns, and when std(r) < `FLAT_STD`
  (a flat curve, up to rounding);
- annualised Sortino = mean(r) / dd × √252 with the downside deviation over ALL days
  dd = √(mean(min(r_t, 0)²)), target 0. None without a return or when dd = 0 (no
  losing day);
- drawdown_t = 1 − e_t / max(e_0 … e_t); max drawdown = max_t drawdown_t, a fraction
  (0.25: a quarter of the peak lost). Its trough is the point of the largest drawdown (the
  first of equal ones), its peak the last point before it at the running maximum; both
  None when the curve never falls. 0 for an empty or rising curve. In [0, 1] while the
  equity stays positive; above 1 means losses beyond the capital.

A curve whose equity reaches 0 or below before its last point has no meaningful returns:
Sharpe and Sortino are then None.

Trade metrics (p_1 … p_k the round-trip P&Ls; a win is p > 0, a loss p < 0, a round trip
at exactly 0 is neither but counts as a trade):

- trades = k; win rate = wins / k (None when k = 0);
- gross profit = Σ p⁺, gross loss = Σ |p⁻|; profit factor = gross profit / gross loss,
  `math.inf` when nothing was lost but something won, None when both are 0 (no trades, or
  only break-even ones);
- average win = mean of the wins, average loss = mean of the losses (a negative number),
  each None when there is none;
- expectancy = mean(p) = win rate × average win + loss rate × average loss, the P&L to
  expect per trade (None when k = 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

TRADING_DAYS = 252
FLAT_STD = 1e-12

FloatArray = npt.NDArray[np.float64]
Values = Sequence[float] | npt.NDArray[np.floating[Any]]


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The largest fall from a running peak, as a fraction of the peak."""

    fraction: float
    peak_at: datetime | None
    trough_at: datetime | None


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Round-trip figures (module docstring, "Trade metrics")."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    average_win: float | None
    average_loss: float | None
    expectancy: float | None


@dataclass(frozen=True, slots=True)
class Performance:
    """Every metric of one equity curve and its round trips."""

    days: int
    start_equity: float | None
    end_equity: float | None
    total_return: float | None
    sharpe: float | None
    sortino: float | None
    drawdown: Drawdown
    trades: TradeStats


def as_array(values: Values) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def daily_returns(equity: Values) -> FloatArray:
    """r_t = e_t / e_{t-1} − 1 for consecutive points (n points give n − 1 returns)."""
    e = as_array(equity)
    if e.size < 2:
        return np.empty(0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return e[1:] / e[:-1] - 1.0


def _ruined(equity: FloatArray) -> bool:
    return bool(equity.size > 1 and np.any(equity[:-1] <= 0))


def total_return(equity: Values) -> float | None:
    e = as_array(equity)
    if e.size == 0 or e[0] <= 0:
        return None
    return float(e[-1] / e[0] - 1.0)


def sharpe_ratio(equity: Values) -> float | None:
    e = as_array(equity)
    r = daily_returns(e)
    if r.size < 2 or _ruined(e):
        return None
    std = float(np.std(r, ddof=1))
    if not std >= FLAT_STD:
        return None
    return float(np.mean(r)) / std * math.sqrt(TRADING_DAYS)


def sortino_ratio(equity: Values) -> float | None:
    e = as_array(equity)
    r = daily_returns(e)
    if r.size == 0 or _ruined(e):
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return float(np.mean(r)) / downside * math.sqrt(TRADING_DAYS)


def drawdown_series(equity: Values) -> FloatArray:
    """drawdown_t = 1 − e_t / running peak (0 where the running peak is not positive)."""
    e = as_array(equity)
    peak = np.maximum.accumulate(e) if e.size else e
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, 1.0 - e / np.where(peak > 0, peak, 1.0), 0.0)
    return np.maximum(dd, 0.0)


def max_drawdown(times: Sequence[datetime], equity: Values) -> Drawdown:
    e = as_array(equity)
    if len(times) != e.size:
        raise ValueError(f"{len(times)} timestamps for {e.size} equity values")
    dd = drawdown_series(e)
    if dd.size == 0 or float(dd.max()) == 0.0:
        return Drawdown(0.0, None, None)
    trough = int(np.argmax(dd))
    peak = trough - int(np.argmax(e[trough::-1]))  # the last point at the peak
    return Drawdown(float(dd[trough]), times[peak], times[trough])


def trade_stats(pnls: Values) -> TradeStats:
    p = as_array(pnls)
    wins, losses = p[p > 0], p[p < 0]
    gross_profit, gross_loss = float(wins.sum()), float(-losses.sum())
    if gross_loss > 0:
        profit_factor: float | None = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else None
    return TradeStats(
        trades=int(p.size),
        wins=int(wins.size),
        losses=int(losses.size),
        win_rate=wins.size / p.size if p.size else None,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=profit_factor,
        average_win=float(wins.mean()) if wins.size else None,
        average_loss=float(losses.mean()) if losses.size else None,
        expectancy=float(p.mean()) if p.size else None,
    )


def measure(times: Sequence[datetime], equity: Values, pnls: Values) -> Performance:
    """Every metric of a curve (one point per session close) and its round-trip P&Ls."""
    e = as_array(equity)
    return Performance(
        days=max(e.size - 1, 0),
        start_equity=float(e[0]) if e.size else None,
        end_equity=float(e[-1]) if e.size else None,
        total_return=total_return(e),
        sharpe=sharpe_ratio(e),
        sortino=sortino_ratio(e),
        drawdown=max_drawdown(times, e),
        trades=trade_stats(pnls),
    )
