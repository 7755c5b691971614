"""What the backtest report reads from a run directory (the backtest run-directory
contract): run.json, and with DuckDB every shard's equity and positions. A shard that
wrote no file (no trade, or cancelled early) simply adds nothing.

A variant/params portfolio's equity at a timestamp is `capital + Σ shard pnl`, each shard's
pnl carried forward from its last row at or before it (0 before its first row). The
portfolio's daily curve keeps its first point (the start, at the capital) and the last
point of each UTC date, i.e. each session close: a shard's own start row inside the range
does not become a day of its own. Its round trips are its closed positions' realised P&L;
positions still open at the end are not round trips.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from engine.errors import Fatal
from engine.performance import Performance, measure

Key = tuple[str, str]

# Carrying each shard's pnl forward and summing over shards is summing, up to each
# timestamp, every shard's change of pnl since its previous row: one cumulative sum, no
# join of every timestamp with every shard.
CURVE_SQL = """
WITH changes AS (
    SELECT variant, params_id, ts, pnl - coalesce(
        lag(pnl) OVER (PARTITION BY variant, params_id, shard_id ORDER BY ts), 0.0) AS change
    FROM equity
),
points AS (SELECT variant, params_id, ts, sum(change) AS change FROM changes GROUP BY ALL),
curve AS (
    SELECT variant, params_id, ts,
        sum(change) OVER (PARTITION BY variant, params_id ORDER BY ts) AS pnl
    FROM points
),
ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY variant, params_id ORDER BY ts) AS nth,
        row_number() OVER (PARTITION BY variant, params_id, ts::DATE ORDER BY ts DESC) AS last
    FROM curve
)
SELECT variant, params_id, ts, pnl FROM ranked WHERE nth = 1 OR last = 1
ORDER BY variant, params_id, ts
"""

ROUND_TRIPS_SQL = """
SELECT variant, params_id, realised_pnl FROM positions WHERE status = 'closed'
ORDER BY variant, params_id, closed_at, shard_id
"""


@dataclass(frozen=True, slots=True)
class Portfolio:
    """One variant/params portfolio: its daily equity curve, round trips and metrics."""

    variant: str
    params_id: str
    params: dict[str, Any]
    times: list[datetime]
    equity: list[float]
    pnls: list[float]
    performance: Performance

    @property
    def label(self) -> str:
        return f"{self.variant}/{self.params_id}"


@dataclass(frozen=True, slots=True)
class RunData:
    run: dict[str, Any]
    portfolios: list[Portfolio]

    @property
    def variants(self) -> list[str]:
        return [str(v) for v in self.run.get("variants", [])]

    def of_variant(self, variant: str) -> list[Portfolio]:
        return [p for p in self.portfolios if p.variant == variant]


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        raise Fatal(f"no run.json in {run_dir}", "is this a backtest run directory?")
    run: dict[str, Any] = json.loads(path.read_text())
    return run


def _read(conn: duckdb.DuckDBPyConnection, files: list[Path], view: str, sql: str) -> list[Any]:
    if not files:
        return []
    conn.read_parquet([str(f) for f in files], union_by_name=True).create_view(view)
    return conn.execute(sql).fetchall()


def _shard_files(run_dir: Path, name: str) -> list[Path]:
    """The shards' files of one kind; a hidden folder is a shard still being written."""
    found = run_dir.glob(f"shards/*/{name}")
    return sorted(f for f in found if not f.parent.name.startswith("."))


def load_run(run_dir: Path) -> RunData:
    """run.json and every portfolio of its variants × grid, with its metrics."""
    run = read_run_json(run_dir)
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        curve_rows = _read(conn, _shard_files(run_dir, "equity.parquet"), "equity", CURVE_SQL)
        trip_rows = _read(
            conn, _shard_files(run_dir, "positions.parquet"), "positions", ROUND_TRIPS_SQL
        )
    curves: dict[Key, list[tuple[datetime, float]]] = defaultdict(list)
    for variant, params_id, ts, pnl in curve_rows:
        curves[(variant, params_id)].append((ts, float(pnl)))
    trips: dict[Key, list[float]] = defaultdict(list)
    for variant, params_id, pnl in trip_rows:
        trips[(variant, params_id)].append(float(pnl))
    capital = float(run["capital"])
    portfolios = []
    for variant in run.get("variants", []):
        for entry in run.get("grid", []):
            key = (str(variant), str(entry["params_id"]))
            times = [ts for ts, _ in curves[key]]
            equity = [capital + pnl for _, pnl in curves[key]]
            pnls = trips[key]
            perf = measure(times, equity, pnls)
            portfolios.append(
                Portfolio(*key, dict(entry.get("params", {})), times, equity, pnls, perf)
            )
    return RunData(run, portfolios)
