"""The independent check (issue 8, item 4): one simple rule in Tandem and in backtrader.

EMA 8/21 cross on SPY's 5-minute bars, equity mode: a golden cross opens a long, a death
cross closes it; fills at the next minute bar's open; no fees, no slippage; no exit rules,
no protections, no session-end exit (`session_flat=False`). Tandem's market-hours check is
mirrored by the reference: it opens nothing on a session's last bar (the alert of that
bar is due at the close, when Tandem refuses an entry as `market_closed`). A death cross on
a session's last bar fills at the next session's first bar in both (docs/fills.md).

Tandem runs the registry's `ema-cross` alerts through `engine.backtest.Backtest`, the code
`tandem backtest` runs; backtrader runs `tests/reference/backtrader_ema.py`. The trade
lists and the final P&L must be identical.
"""

from __future__ import annotations

import asyncio
import math

import polars as pl
import pytest

from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.adapters.symbol_file import load_symbol_table
from engine.alert_rules import alert_due_at
from engine.backtest import Backtest, BacktestConfig
from engine.calendar import xnys_calendar
from engine.exits import ExitRules
from engine.orders import PlanConfig
from engine.risk import RiskLimits
from engine.scenarios import Scenario, get_scenario
from engine.strategies.base import MinuteBars
from engine.strategies.registry import default_registry
from tests.reference.backtrader_ema import backtrader_ema_cross

DATA = bundled_data_dir()
SESSIONS = get_scenario("spy-2013-10").sessions
CAPITAL, RISK = 10_000.0, 0.05  # a budget of 500 per entry, as the reference sizes it


def regular_hours_spy() -> pl.DataFrame:
    cal = xnys_calendar()
    bars = pl.read_parquet(DATA / "bars_1m.parquet").filter(pl.col("symbol") == "SPY")
    parts = [
        bars.filter((pl.col("ts") >= cal.session_open(d)) & (pl.col("ts") < cal.session_close(d)))
        for d in SESSIONS
    ]
    return pl.concat(parts).sort("ts")


def tandem_trades() -> tuple[list[tuple[object, ...]], float, list[str]]:
    market = ReplayMarketData(Scenario("check", ("SPY",), SESSIONS, False, 0.0075, "SPY"))
    strategy = default_registry().get("ema-cross")
    params = strategy.validate(
        {"fast": 8, "slow": 21, "timeframe_minutes": 5, "session_flat": False}
    )
    series = market.minute_series("SPY")
    bars = MinuteBars(
        "SPY", series.ts, series.open, series.high, series.low, series.close, series.volume
    )
    alerts = [(alert_due_at(a), a) for a in strategy.alerts(bars, params)]
    config = BacktestConfig(
        plan=PlanConfig(instrument_mode="equity"),
        limits=RiskLimits(capital_available=CAPITAL, per_trade_risk_pct=RISK),
        exit_rules=ExitRules(),  # every rule off
        protections=(),
        slippage_ticks=0,
    )
    symbols = load_symbol_table(DATA / "symbol_properties.csv")
    backtest = Backtest(market, symbols, config, market.timeline()[0])
    result = asyncio.run(backtest.run(market.timeline_us(), alerts))
    trades = [
        (c.position.opened_at, c.position.avg_price, c.closed_at, c.exit_price, c.position.quantity)
        for c in result.closed
    ]
    pnl = math.fsum(c.realised_pnl for c in result.closed)
    reasons = [str(s["reason"]) for s in result.signals if s["status"] == "rejected"]
    return trades, pnl, reasons


def test_tandem_and_backtrader_make_the_same_trades_and_pnl() -> None:
    ours, our_pnl, refused = tandem_trades()
    ref = backtrader_ema_cross(
        regular_hours_spy(), fast=8, slow=21, timeframe_minutes=5, budget=500.0
    )
    theirs = [
        (t.entry_time, t.entry_price, t.exit_time, t.exit_price, t.quantity) for t in ref.trades
    ]
    assert len(ours) >= 5  # the week has real round trips, overnight holds included
    assert any(entry.date() != exit_.date() for entry, _p, exit_, _q, _n in ours)
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine[0] == reference[0] and mine[2] == reference[2]  # fill times
        assert mine[4] == reference[4]  # quantities
        assert mine[1] == pytest.approx(reference[1], abs=1e-9)  # the bars' opens
        assert mine[3] == pytest.approx(reference[3], abs=1e-9)
    assert our_pnl == pytest.approx(ref.pnl, abs=1e-6)
    # what Tandem refused is what the reference does not do: entries at the close, and
    # the exits of those entries
    assert set(refused) <= {"market_closed", "no_open_position"}
