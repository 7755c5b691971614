"""The in-process backtest engine (engine/backtest.py) on the bundled real bars.

The parity with the live actor pipeline is checked end to end in tests/e2e/test_replay.py;
here: the vectorised exit scan against ticking every minute, the vectorised last price
against the scalar quote, the dedupe and decision rules, and the run directory.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from actors.backtest import ShardSpec, run_shard
from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.adapters.replay_store import to_us
from engine.adapters.symbol_file import load_symbol_table
from engine.backtest import Backtest, BacktestConfig, BacktestResult
from engine.clock import LiveClock
from engine.exits import ExitRules
from engine.orders import PlanConfig
from engine.protections import create_default_protections
from engine.risk import RiskLimits
from engine.scenarios import Scenario, get_scenario
from storage.backtests import default_tables, summary

DATA = bundled_data_dir()
ALERTS = DATA / "alerts" / "spy-2013-10.ema-cross-5m.json"
SCENARIO = get_scenario("spy-2013-10")


@pytest.fixture(scope="module")
def market() -> ReplayMarketData:
    spy = Scenario("t-spy", ("SPY",), SCENARIO.sessions, False, SCENARIO.rate, "SPY")
    return ReplayMarketData(spy)


def _config(mode: str = "equity", **rules: float | None) -> BacktestConfig:
    limits, exit_rows = default_tables(LiveClock())
    exits = ExitRules.from_rows(exit_rows)
    return BacktestConfig(
        plan=PlanConfig(instrument_mode="equity" if mode == "equity" else "option"),
        limits=RiskLimits.from_rows(limits),
        exit_rules=replace(exits, **rules) if rules else exits,
        protections=create_default_protections(),
    )


def _alerts() -> list[tuple[datetime, dict[str, Any]]]:
    from engine.alert_rules import alert_due_at

    return [(alert_due_at(a), a) for a in json.loads(ALERTS.read_text())]


def _run(market: ReplayMarketData, config: BacktestConfig, *, scan: bool) -> BacktestResult:
    timeline = market.timeline()
    symbols = load_symbol_table(DATA / "symbol_properties.csv")
    backtest = Backtest(market, symbols, config, timeline[0], scan=scan)
    return asyncio.run(backtest.run(timeline, _alerts()))


def _book(result: BacktestResult) -> list[tuple[Any, ...]]:
    return [
        (
            r.order.idempotency_key,
            r.order.reason,
            r.order.created_at,
            r.status,
            f.price,
            f.filled_at,
        )
        for r, f in result.fills
    ] + [(r.order.idempotency_key, r.status, r.refusal) for r in result.orders]


@pytest.mark.parametrize(
    "rules",
    [
        {},  # the defaults: session end 5 minutes before the close, stop 30 %, target 50 %
        {"stop_loss_pct": 0.0005, "profit_target_pct": 0.001},  # tight: exits mid-position
        {"time_stop_minutes": 17.0, "session_end_minutes_before_close": None},
    ],
)
def test_the_vectorised_exit_scan_exits_where_ticking_every_minute_does(
    market: ReplayMarketData, rules: dict[str, float | None]
) -> None:
    config = _config("equity", **rules)
    scanned = _run(market, config, scan=True)
    ticked = _run(market, config, scan=False)
    assert _book(scanned) == _book(ticked)
    assert len(scanned.fills) >= 10
    if rules.get("stop_loss_pct"):  # the rule exits really came from the scan
        reasons = {r.order.reason for r, _f in scanned.fills if r.order.intent == "exit"}
        assert {"stop_loss", "profit_target"} & reasons


def test_vectorised_last_prices_equal_the_scalar_quote(market: ReplayMarketData) -> None:
    timeline = market.timeline()
    minutes = np.array([to_us(t) for t in timeline], dtype=np.int64)
    prices, ok = market.last_prices("SPY", minutes)
    assert bool(ok.all())
    for t, price in zip(timeline[::7], prices[::7], strict=True):
        assert asyncio.run(market.quote("SPY", t)).last == price


def test_the_bundled_alerts_in_option_mode_make_the_replays_orders(
    market: ReplayMarketData,
) -> None:
    result = _run(market, _config("option"), scan=True)
    assert len(result.signals) == 14
    # as `make run`'s replay: LowProfitPairs refuses one entry, whose exit finds nothing
    assert [s["reason"] for s in result.signals].count("protection_lock:LowProfitPairs") == 1
    assert len(result.orders) == len(result.fills) == 12
    assert all(r.order.asset_class == "option" for r in result.orders)
    assert not result.open


def test_a_repeated_alert_within_the_window_is_one_signal(market: ReplayMarketData) -> None:
    timeline = market.timeline()
    symbols = load_symbol_table(DATA / "symbol_properties.csv")
    backtest = Backtest(market, symbols, _config(), timeline[0])
    first = _alerts()[0]
    again = [first, (first[0], dict(first[1]))]
    result = asyncio.run(backtest.run(timeline, again))
    assert len(result.signals) == 1
    assert asyncio.run(backtest.on_alert(first[1], first[0])) == "duplicate"
    assert asyncio.run(backtest.on_alert({"symbol": "SPY"}, first[0])).startswith("invalid:")


def test_an_exit_alert_after_the_close_fills_at_the_next_sessions_first_bar(
    market: ReplayMarketData,
) -> None:
    """A share order outside regular hours waits for the next open (docs/fills.md)."""
    timeline = market.timeline()
    symbols = load_symbol_table(DATA / "symbol_properties.csv")
    config = _config("equity", session_end_minutes_before_close=None)
    backtest = Backtest(market, symbols, config, timeline[0])
    entry = {
        "symbol": "SPY",
        "direction": "buy",
        "timeframe": "5",
        "timestamp": "2013-10-07T19:50:00Z",
        "action": "entry",
        "market_position": "long",
        "prev_market_position": "flat",
        "strategy": "t",
    }
    exit_ = {
        **entry,
        "direction": "sell",
        "action": "exit",
        "market_position": "flat",
        "prev_market_position": "long",
        "timestamp": "2013-10-07T19:55:00Z",
    }
    due = [
        (datetime(2013, 10, 7, 19, 55, tzinfo=UTC), entry),
        (datetime(2013, 10, 7, 20, 0, tzinfo=UTC), exit_),
    ]
    result = asyncio.run(backtest.run(timeline, due))
    (_, buy), (_, sell) = result.fills
    assert buy.filled_at == datetime(2013, 10, 7, 19, 55, tzinfo=UTC)
    assert sell.filled_at == datetime(2013, 10, 8, 13, 30, tzinfo=UTC)  # 09:30 ET next day
    bars = pl.read_parquet(DATA / "bars_1m.parquet").filter(
        (pl.col("symbol") == "SPY") & (pl.col("ts") == sell.filled_at)
    )
    assert sell.reference_price == pytest.approx(bars["open"][0])


def test_a_shard_writes_its_parquet_and_the_summary_reads_it(tmp_path: Path) -> None:
    spec = ShardSpec(
        run_dir=str(tmp_path),
        shard_id="SPY-p0-A",
        symbol="SPY",
        sessions=SCENARIO.sessions,
        params_id="p0",
        config=_config("option"),
        market_dir=str(DATA),
        rate=SCENARIO.rate,
        alerts_file=str(ALERTS),
    )
    figures = run_shard(spec)
    assert figures["orders"] == 12 and figures["bars"] == 2340
    shard = tmp_path / "shards" / "SPY-p0-A"
    positions = pl.read_parquet(shard / "positions.parquet")
    equity = pl.read_parquet(shard / "equity.parquet")
    assert positions.height == 6 and set(positions["status"]) == {"closed"}
    assert equity.height == 1 + len(SCENARIO.sessions)
    # flat at every session close: the curve ends at the realised P&L
    assert equity["pnl"][-1] == pytest.approx(positions["realised_pnl"].sum())
    (row,) = summary(tmp_path)
    assert row["orders"] == 12 and row["trades"] == 6
    assert row["realised_pnl"] == pytest.approx(round(positions["realised_pnl"].sum(), 2))
    assert not list((tmp_path / "tmp").iterdir())  # no temporary directory left


def test_sessions_of_a_shard_come_from_the_data() -> None:
    from api.backtest import sessions_with_bars

    found = sessions_with_bars(DATA, "SPY", date(2013, 10, 1), date(2013, 10, 31))
    assert tuple(found) == SCENARIO.sessions


def test_the_equity_curve_is_realised_plus_open_positions_at_their_marks(
    market: ReplayMarketData,
) -> None:
    """Checked against the definition, position by position, with overnight holds."""
    from engine.calendar import xnys_calendar
    from engine.positions import mark

    config = _config("equity", session_end_minutes_before_close=None, stop_loss_pct=None)
    timeline = market.timeline()
    symbols = load_symbol_table(DATA / "symbol_properties.csv")
    backtest = Backtest(market, symbols, config, timeline[0])
    result = asyncio.run(backtest.run(timeline, _alerts()))
    closes = [xnys_calendar().session_close(d) for d in SCENARIO.sessions]
    curve = asyncio.run(backtest.equity_curve(timeline[0], closes))
    held = [(c.position, c.closed_at) for c in result.closed] + [
        (h.position, None) for h in result.open
    ]
    assert any(p.opened_at.date() != (end or closes[-1]).date() for p, end in held)
    assert curve[0] == (timeline[0], 0.0)
    for ts, pnl in curve[1:]:
        realised = sum(c.realised_pnl for c in result.closed if c.closed_at <= ts)
        unrealised = sum(
            mark(p, asyncio.run(market.quote("SPY", ts)).last, ts).unrealised_pnl
            for p, end in held
            if p.opened_at <= ts and (end is None or ts < end)
        )
        assert pnl == pytest.approx(realised + unrealised)


def test_the_scan_knows_a_half_days_close() -> None:
    """GOOG on 2015-12-24 (XNYS closes at 13:00 ET): the session-end rule exits at 12:55 ET,
    scanned or ticked."""
    goog = get_scenario("goog-2015-12-24")
    market = ReplayMarketData(Scenario("t-goog", ("GOOG",), goog.sessions, False, 0.01, "GOOG"))
    entry = {
        "symbol": "GOOG",
        "direction": "buy",
        "timeframe": "5",
        "timestamp": "2015-12-24T15:00:00Z",
        "action": "entry",
        "market_position": "long",
        "prev_market_position": "flat",
        "strategy": "t",
    }
    due = [(datetime(2015, 12, 24, 15, 5, tzinfo=UTC), entry)]
    config = replace(  # GOOG is near 750: a budget of 5,000 buys shares
        _config("equity", stop_loss_pct=None, profit_target_pct=None),
        limits=RiskLimits(capital_available=100_000.0, per_trade_risk_pct=0.05),
    )
    symbols = load_symbol_table(DATA / "symbol_properties.csv")
    timeline = market.timeline()
    books = []
    for scan in (True, False):
        backtest = Backtest(market, symbols, config, timeline[0], scan=scan)
        result = asyncio.run(backtest.run(timeline, due))
        books.append(_book(result))
        (_, _buy), (sell_order, sell) = result.fills
        assert sell.filled_at == datetime(2015, 12, 24, 17, 55, tzinfo=UTC)
        assert sell_order.order.reason == "session_end"
        assert sell_order.order.created_at == datetime(2015, 12, 24, 17, 55, tzinfo=UTC)
    assert books[0] == books[1]
