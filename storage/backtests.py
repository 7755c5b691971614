"""Backtest runs on disk: one directory per run, Parquet per shard, summaries by DuckDB.

Layout (docs/backtests.md):

    <data_dir>/backtests/<run_id>/run.json
    <data_dir>/backtests/<run_id>/shards/<shard_id>/{orders,trades,positions,equity}.parquet

A shard's files are written to `<run>/tmp/<shard_id>` and renamed into `shards/`, so a
shard directory is either complete or absent (a cancelled shard never leaves half one).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from engine.backtest import BacktestResult
from engine.clock import Clock
from storage.migrate import Migrator

TS = pa.timestamp("us", tz="UTC")
ORDERS_SCHEMA = pa.schema(
    [
        ("shard_id", pa.string()),
        ("variant", pa.string()),
        ("params_id", pa.string()),
        ("symbol", pa.string()),
        ("signal_id", pa.int64()),
        ("order_key", pa.string()),
        ("client_order_id", pa.string()),
        ("intent", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.int64()),
        ("instrument", pa.string()),
        ("asset_class", pa.string()),
        ("reason", pa.string()),
        ("created_at", TS),
        ("status", pa.string()),
    ]
)
TRADES_SCHEMA = pa.schema(
    [
        ("shard_id", pa.string()),
        ("variant", pa.string()),
        ("params_id", pa.string()),
        ("symbol", pa.string()),
        ("client_order_id", pa.string()),
        ("fill_id", pa.string()),
        ("intent", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.int64()),
        ("price", pa.float64()),
        ("multiplier", pa.int64()),
        ("fees", pa.float64()),
        ("filled_at", TS),
    ]
)
POSITIONS_SCHEMA = pa.schema(
    [
        ("shard_id", pa.string()),
        ("variant", pa.string()),
        ("params_id", pa.string()),
        ("symbol", pa.string()),
        ("instrument", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.int64()),
        ("multiplier", pa.int64()),
        ("avg_price", pa.float64()),
        ("exit_price", pa.float64()),
        ("opened_at", TS),
        ("closed_at", TS),
        ("realised_pnl", pa.float64()),
        ("unrealised_pnl", pa.float64()),
        ("exit_reason", pa.string()),
        ("status", pa.string()),
    ]
)
EQUITY_SCHEMA = pa.schema(
    [
        ("shard_id", pa.string()),
        ("variant", pa.string()),
        ("params_id", pa.string()),
        ("ts", TS),
        ("pnl", pa.float64()),
    ]
)


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """run.json, replaced atomically."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "run.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, path / "run.json")


def read_manifest(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((path / "run.json").read_text())
    return loaded


def write_shard(  # noqa: PLR0917
    path: Path,
    shard_id: str,
    variant: str,
    params_id: str,
    result: BacktestResult,
    unrealised: Mapping[int, float],
) -> None:
    """The shard's four Parquet files, made visible together (a rename)."""
    ids = {"shard_id": shard_id, "variant": variant, "params_id": params_id}
    orders = [
        {
            **ids,
            "symbol": r.order.symbol,
            "signal_id": r.signal_id,
            "order_key": r.order.idempotency_key,
            "client_order_id": r.order.client_order_id,
            "intent": r.order.intent,
            "side": r.order.side,
            "quantity": r.order.quantity,
            "instrument": r.order.instrument,
            "asset_class": r.order.asset_class,
            "reason": r.order.reason if r.order.intent == "exit" else r.refusal,
            "created_at": r.order.created_at,
            "status": r.status,
        }
        for r in result.orders
    ]
    trades = [
        {
            **ids,
            "symbol": f.symbol,
            "client_order_id": f.client_order_id,
            "fill_id": f"paper-{f.client_order_id}-1",
            "intent": r.order.intent,
            "side": f.side,
            "quantity": f.quantity,
            "price": f.price,
            "multiplier": f.multiplier,
            "fees": f.fees,
            "filled_at": f.filled_at,
        }
        for r, f in result.fills
    ]
    positions = [
        {
            **ids,
            "symbol": c.position.symbol,
            "instrument": c.position.instrument,
            "side": c.position.side,
            "quantity": c.position.quantity,
            "multiplier": c.position.multiplier,
            "avg_price": c.position.avg_price,
            "exit_price": c.exit_price,
            "opened_at": c.position.opened_at,
            "closed_at": c.closed_at,
            "realised_pnl": c.realised_pnl,
            "unrealised_pnl": 0.0,
            "exit_reason": c.exit_reason,
            "status": "closed",
        }
        for c in result.closed
    ] + [
        {
            **ids,
            "symbol": h.position.symbol,
            "instrument": h.position.instrument,
            "side": h.position.side,
            "quantity": h.position.quantity,
            "multiplier": h.position.multiplier,
            "avg_price": h.position.avg_price,
            "exit_price": None,
            "opened_at": h.position.opened_at,
            "closed_at": None,
            "realised_pnl": 0.0,
            "unrealised_pnl": unrealised.get(h.position_id, 0.0),
            "exit_reason": None,
            "status": "open",
        }
        for h in result.open
    ]
    equity = [{**ids, "ts": ts, "pnl": pnl} for ts, pnl in result.equity]
    final = path / "shards" / shard_id
    tmp = path / "tmp" / shard_id  # outside shards/: no reader ever globs a half shard
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, rows, schema in (
        ("orders", orders, ORDERS_SCHEMA),
        ("trades", trades, TRADES_SCHEMA),
        ("positions", positions, POSITIONS_SCHEMA),
        ("equity", equity, EQUITY_SCHEMA),
    ):
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp / f"{name}.parquet")
    shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


SUMMARY_SQL = """
WITH p AS (SELECT variant, params_id, status, realised_pnl, unrealised_pnl
           FROM read_parquet($positions, union_by_name = true)),
     o AS (SELECT variant, params_id FROM read_parquet($orders, union_by_name = true))
SELECT k.variant, k.params_id,
    (SELECT count(*) FROM o WHERE o.variant = k.variant AND o.params_id = k.params_id) AS orders,
    count(p.status) FILTER (WHERE p.status = 'closed') AS trades,
    count(p.status) FILTER (WHERE p.status = 'closed' AND p.realised_pnl > 0) AS wins,
    coalesce(round(sum(p.realised_pnl), 2), 0) AS realised_pnl,
    coalesce(round(sum(p.unrealised_pnl), 2), 0) AS unrealised_pnl
FROM (SELECT DISTINCT variant, params_id FROM o) k
LEFT JOIN p ON p.variant = k.variant AND p.params_id = k.params_id
GROUP BY k.variant, k.params_id
"""


def summary(path: Path) -> list[dict[str, Any]]:
    """Orders, round trips, wins and P&L per variant and parameter set of the run (DuckDB
    over the shards' Parquet); a variant or set whose shards traded nothing has zeros."""
    shards = path / "shards"
    planned = read_manifest(path).get("shards", []) if (path / "run.json").exists() else []
    keys = sorted({(s["variant"], s["params_id"]) for s in planned})
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if any(shards.glob("*/orders.parquet")):
        with duckdb.connect() as conn:
            conn.execute("SET threads = 1")
            table = conn.sql(
                SUMMARY_SQL,
                params={
                    "positions": str(shards / "*" / "positions.parquet"),
                    "orders": str(shards / "*" / "orders.parquet"),
                },
            ).to_arrow_table()
        found = {(r["variant"], r["params_id"]): r for r in table.to_pylist()}
    empty = {"orders": 0, "trades": 0, "wins": 0, "realised_pnl": 0.0, "unrealised_pnl": 0.0}
    return [found.get((v, p), {"variant": v, "params_id": p, **empty}) for v, p in keys or found]


def default_tables(clock: Clock) -> tuple[dict[str, float], dict[str, tuple[float, bool]]]:
    """The `risk_limits` and `exit_rules` a fresh Tandem database holds (its migrations,
    applied to an in-memory DuckDB): a backtest trades with what a new install trades."""
    with duckdb.connect() as conn:
        Migrator(conn, clock, None).up()
        return _limit_rows(conn)


def tables_of(database: Path) -> tuple[dict[str, float], dict[str, tuple[float, bool]]]:
    """The `risk_limits` and `exit_rules` of an existing Tandem database (read only)."""
    with duckdb.connect(str(database), read_only=True) as conn:
        return _limit_rows(conn)


def _limit_rows(
    conn: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, float], dict[str, tuple[float, bool]]]:
    limits = {
        str(n): float(v) for n, v in conn.execute("SELECT name, value FROM risk_limits").fetchall()
    }
    rules = {
        str(n): (float(v), bool(e))
        for n, v, e in conn.execute("SELECT name, value, enabled FROM exit_rules").fetchall()
    }
    return limits, rules
