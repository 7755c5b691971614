"""Benchmark: one-minute bars per second through `tandem backtest`, end to end.

The bundled SPY minute bars (regular hours, the six sessions of 2013-10-04..11) are tiled
onto consecutive full XNYS sessions from 1998 for several symbols (TILE0, TILE1, … with
SPY's symbol properties) until there are >= 10 M bars. Each bar keeps its time of day;
prices are the real SPY prices of the copied session. The rule is the EMA 8/21 cross on
5-minute bars of the independent check (tests/unit/test_backtrader_parity.py): a golden
cross opens a long, a death cross closes it, no session-end exit, shares filled at the
next bar's open, no fees, no slippage, no exit rules, no protections.

End to end = the strategy's alerts from the bars (vectorised), Engine 1's decisions,
orders, paper fills and positions, and the Parquet results written, per shard. Figures:

- `ray_bars_per_s`: every shard as a Ray task on this machine's CPUs (`run_backtest`);
- `one_process_bars_per_s`: the same shards one after another in this process
  (`run_shard` called directly): `scaling` = ray / one process;
- `backtrader_bars_per_s`: backtrader on the same rule over one symbol's first
  `BT_SESSIONS` sessions, whose trades must equal Tandem's on the same bars:
  `speedup` = ray_bars_per_s / backtrader_bars_per_s (goal >= 20; >= 1 M bars/s).

Run from the repo root: `.venv/bin/python bench/backtest.py [--smoke]`.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.adapters.replay import bundled_data_dir  # noqa: E402
from engine.calendar import xnys_calendar  # noqa: E402

SOURCE_SESSIONS = [date(2013, 10, d) for d in (4, 7, 8, 9, 10, 11)]
FULL_BARS = 10_000_000
SMOKE_BARS = 40_000
SYMBOLS = 4
BT_SESSIONS = 260  # backtrader's share: about a year of one symbol (~100 k bars)
SMOKE_BT_SESSIONS = 12
GOAL_BARS_PER_S = 1_000_000
GOAL_SPEEDUP = 20.0


def source_bars() -> pl.DataFrame:
    """SPY's regular-hours minute bars of the six bundled 2013-10 sessions, per session."""
    cal = xnys_calendar()
    frame = pl.read_parquet(bundled_data_dir() / "bars_1m.parquet").filter(
        pl.col("symbol") == "SPY"
    )
    parts = []
    for i, d in enumerate(SOURCE_SESSIONS):
        lo, hi = cal.session_open(d), cal.session_close(d)
        day = frame.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)).sort("ts")
        parts.append(
            day.with_columns(pl.lit(i).alias("source"), (pl.col("ts") - pl.lit(lo)).alias("offset"))
        )
    return pl.concat(parts)


def tile(out_dir: Path, bars: int, symbols: int) -> tuple[list[str], date, date]:
    """Write `bars_1m.parquet` (+ an empty daily file, SPY's properties for each tile
    symbol) with >= `bars` regular-hours bars over `symbols` symbols; their names and
    the session range."""
    cal = xnys_calendar()
    src = source_bars()
    per_session = src.group_by("source").len().sort("source")["len"].to_list()
    per_symbol = -(-bars // symbols)
    sessions = [
        d
        for d in cal.sessions_between(date(1998, 1, 2), date(2035, 12, 1))
        if cal.session_close(d) - cal.session_open(d)
        == cal.session_close(SOURCE_SESSIONS[0]) - cal.session_open(SOURCE_SESSIONS[0])
    ]
    chosen: list[date] = []
    count = 0
    while count < per_symbol:
        chosen.append(sessions[len(chosen)])
        count += per_session[(len(chosen) - 1) % len(SOURCE_SESSIONS)]
    opens = pl.DataFrame(
        {
            "k": range(len(chosen)),
            "source": [k % len(SOURCE_SESSIONS) for k in range(len(chosen))],
            "open_ts": [cal.session_open(d) for d in chosen],
        }
    )
    one = (
        opens.join(src, on="source")
        .with_columns((pl.col("open_ts") + pl.col("offset")).alias("ts"))
        .select("ts", "open", "high", "low", "close", "volume")
        .sort("ts")
    )
    names = [f"TILE{i}" for i in range(symbols)]
    full = pl.concat([one.with_columns(pl.lit(n).alias("symbol")) for n in names])
    out_dir.mkdir(parents=True, exist_ok=True)
    full.select("symbol", "ts", "open", "high", "low", "close", "volume").write_parquet(
        out_dir / "bars_1m.parquet", row_group_size=1_000_000
    )
    daily = pl.read_parquet(bundled_data_dir() / "bars_1d.parquet").head(0)
    daily.write_parquet(out_dir / "bars_1d.parquet")
    props = (bundled_data_dir() / "symbol_properties.csv").read_text().splitlines()
    spy = next(line for line in props if line.startswith("SPY,"))
    rows = props + [spy.replace("SPY,", f"{n},", 1) for n in names]
    (out_dir / "symbol_properties.csv").write_text("\n".join(rows) + "\n")
    return names, chosen[0], chosen[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_BARS} bars")
    args = parser.parse_args()
    total = SMOKE_BARS if args.smoke else FULL_BARS
    work = Path(tempfile.mkdtemp(prefix="tandem-bench-backtest-"))
    try:
        result = run(work, total, SMOKE_BT_SESSIONS if args.smoke else BT_SESSIONS)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


RULE = {"fast": 8, "slow": 21, "timeframe_minutes": 5, "session_flat": False}


def settings_for(out: Path) -> Any:
    from engine.settings import load_settings

    # the independent check's rule: no slippage, no protections (exit rules: --no-exit-rules)
    return load_settings(
        {"TANDEM_DATA_DIR": str(out), "TANDEM_SLIPPAGE_TICKS": "0", "TANDEM_PROTECTIONS": ""}
    )


def request_for(names: list[str], first: date, last: date, data: Path, sessions: int) -> Any:
    from api.backtest import BacktestRequest

    return BacktestRequest(
        symbols=tuple(names),
        start=first,
        end=last,
        instrument_mode="equity",
        variants=("A",),
        strategy="ema-cross",
        grid=(RULE,),
        market_dir=data,
        shard_sessions=sessions,
        exit_rules=False,
    )


def run(work: Path, total: int, bt_sessions: int) -> dict[str, Any]:
    import ray

    from actors.backtest import run_shard
    from api.backtest import plan_shards, run_backtest
    from engine.clock import LiveClock

    data = work / "data"
    started = time.perf_counter()
    names, first, last = tile(data, total, SYMBOLS)
    tiled = pl.scan_parquet(data / "bars_1m.parquet").select(pl.len()).collect().item()
    print(
        f"tiled {tiled:,} bars over {len(names)} symbols, {first}..{last} "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    cpus = os.cpu_count() or 1
    per_symbol_sessions = len(xnys_calendar().sessions_between(first, last))
    # enough shards to keep every CPU busy to the end: 4 per CPU at least
    shard_sessions = max(1, -(-per_symbol_sessions * len(names) // (4 * cpus)))
    request = request_for(names, first, last, data, shard_sessions)

    # 1. every shard as a Ray task on all cores
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024 * 1024,
    )
    try:
        started = time.perf_counter()
        run_dir, rows = run_backtest(request, settings_for(work / "ray"), LiveClock(), run_id="ray")
        ray_s = time.perf_counter() - started
    finally:
        ray.shutdown()
    ray_trades = pl.read_parquet(run_dir / "shards" / "*" / "positions.parquet")

    # 2. the same shards one after another in this process
    specs, _grid = plan_shards(
        request, settings_for(work / "one"), work / "one" / "run", LiveClock()
    )
    started = time.perf_counter()
    for spec in specs:
        run_shard(spec)
    one_s = time.perf_counter() - started
    one_trades = pl.read_parquet(work / "one" / "run" / "shards" / "*" / "positions.parquet")
    key = ["symbol", "opened_at", "closed_at", "avg_price", "exit_price", "quantity"]
    same_ray_one = ray_trades.select(key).sort(key).equals(one_trades.select(key).sort(key))

    # 3. backtrader on one symbol's first sessions, Tandem on the same bars
    bt_bars, bt_tandem = backtrader_share(data, names[0], first, bt_sessions, work)
    sys.path.insert(0, str(ROOT))
    from tests.reference.backtrader_ema import backtrader_ema_cross

    ref = backtrader_ema_cross(bt_bars, fast=8, slow=21, timeframe_minutes=5, budget=500.0)
    theirs = [
        (t.entry_time, round(t.entry_price, 6), t.exit_time, round(t.exit_price, 6), t.quantity)
        for t in ref.trades
    ]
    ours = [
        (
            r["opened_at"],
            round(r["avg_price"], 6),
            r["closed_at"],
            round(r["exit_price"], 6),
            r["quantity"],
        )
        for r in bt_tandem.filter(pl.col("status") == "closed")
        .sort("opened_at")
        .iter_rows(named=True)
    ]
    identical = ours == theirs and len(ours) > 0

    ray_rate = tiled / ray_s
    one_rate = tiled / one_s
    return {
        "bench": "backtest",
        "bars": tiled,
        "shards": len(specs),
        "cpus": cpus,
        "round_trips": ray_trades.filter(pl.col("status") == "closed").height,
        "ray_s": round(ray_s, 2),
        "ray_bars_per_s": round(ray_rate),
        "one_process_s": round(one_s, 2),
        "one_process_bars_per_s": round(one_rate),
        "scaling": round(ray_rate / one_rate, 2),
        "ray_equals_one_process": same_ray_one,
        "backtrader_bars": bt_bars.height,
        "backtrader_bars_per_s": round(ref.bars_per_s),
        "backtrader_trades": len(theirs),
        "trades_identical": identical,
        "speedup": round(ray_rate / ref.bars_per_s, 1),
        "goal_bars_per_s": GOAL_BARS_PER_S,
        "goal_speedup": GOAL_SPEEDUP,
        "realised_pnl": rows[0]["realised_pnl"] if rows else 0.0,
    }


def backtrader_share(
    data: Path, symbol: str, first: date, sessions: int, work: Path
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One symbol's first `sessions` sessions: its bars for backtrader, and Tandem's round
    trips on exactly those sessions (one shard, in this process)."""
    from actors.backtest import ShardSpec, run_shard
    from api.backtest import backtest_config, sessions_with_bars
    from engine.clock import LiveClock
    from engine.exits import ExitRules

    days = sessions_with_bars(data, symbol, first, date(2035, 12, 1))[:sessions]
    cal = xnys_calendar()
    lo, hi = cal.session_open(days[0]), cal.session_close(days[-1])
    bars = pl.read_parquet(data / "bars_1m.parquet").filter(
        (pl.col("symbol") == symbol) & (pl.col("ts") >= lo) & (pl.col("ts") < hi)
    )
    config = backtest_config(settings_for(work / "bt"), "equity", "A", LiveClock(), None)
    spec = ShardSpec(
        run_dir=str(work / "bt"),
        shard_id="bt",
        symbol=symbol,
        sessions=tuple(days),
        params_id="p0",
        config=replace(config, exit_rules=ExitRules()),
        market_dir=str(data),
        strategy="ema-cross",
        params=RULE,
    )
    run_shard(spec)
    return bars, pl.read_parquet(work / "bt" / "shards" / "bt" / "positions.parquet")


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
