"""`tandem run --exit-after-replay`, twice: the replay is deterministic, end to end, both
engines; `tandem backtest` on the same alerts and bars makes the same orders and fills
in one process; then `tandem replay --experiment` recomputes Engine 2's decisions from
the log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from engine.alert_rules import EMA_CROSS_5M
from tests.conftest import free_port

TABLES = {
    "signals": "signal_id",
    "refactored_signals": "signal_id",
    "orders": "order_id",
    "trades": "trade_id",
    "positions": "position_id",
    "experiments": "signal_id",
    "agent_performance": "signal_id, agent",
    "shadow_positions": "position_id",
    "shadow_trades": "trade_id",
}


def replay(data_dir: Path, *args: str) -> dict[str, list[tuple[object, ...]]]:
    env = {
        **os.environ,
        "TANDEM_DATA_DIR": str(data_dir),
        "TANDEM_PORT": str(free_port()),
        "TANDEM_DASHBOARD_PORT": str(free_port()),
        "TANDEM_NUM_CPUS": "2",
    }
    tandem = Path(sys.executable).parent / "tandem"
    done = subprocess.run(
        [str(tandem), "run", "--exit-after-replay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "14 alerts posted" in done.stderr + done.stdout
    conn = duckdb.connect(str(data_dir / "replay-spy-2013-10" / "tandem.duckdb"), read_only=True)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {k}").fetchall() for t, k in TABLES.items()
        }
    finally:
        conn.close()


def renamed(tables: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    """The tables with the registry strategy's name where the bundled file's rule name is."""
    return {
        t: [tuple(EMA_CROSS_5M if v == "ema-cross" else v for v in row) for row in rows]
        for t, rows in tables.items()
    }


@pytest.mark.timeout(900)  # two whole runs of `make run`'s replay, one after the other
def test_two_replays_give_identical_signals_orders_fills_and_positions(tmp_path: Path) -> None:
    """The second replay's alerts come from the registry's `ema-cross` strategy, posted
    live by the StrategyRunner minute by minute: the same alerts as the bundled file
    (which the rule `ema-cross-5m` generated), so the same everything."""
    first = replay(tmp_path / "one")
    second = renamed(replay(tmp_path / "two", "--strategy", "ema-cross"))
    assert len(first["signals"]) == 14
    # 7 entries and 7 exits; the default protections (LowProfitPairs) lock SPY after two
    # losing round trips, so one entry is refused and then its exit finds nothing to close
    assert len(first["orders"]) == len(first["trades"]) >= 12  # alerts' orders + rule exits
    assert {row[9] for row in first["positions"]} == {"closed"}  # every round trip closed
    assert {row[2] for row in first["experiments"]} == {"A", "B"}  # both variants ran
    assert first["shadow_trades"], "variant B made no shadow trade"
    assert first == second
    assert_backtest_matches_replay(tmp_path / "one", tmp_path / "bt")

    tandem = Path(sys.executable).parent / "tandem"
    check = subprocess.run(
        [
            str(tandem),
            "replay",
            "--experiment",
            "ab-1",
            "--data-dir",
            str(tmp_path / "one" / "replay-spy-2013-10"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "hash chain intact" in check.stdout
    assert " 0 different" in check.stdout


ORDER_COLUMNS = "idempotency_key, client_order_id, intent, side, quantity, instrument, created_at"


def assert_backtest_matches_replay(replay_dir: Path, data_dir: Path) -> None:
    """Parity: the live actor pipeline's orders and fills (the replay's database) equal
    those of `tandem backtest` on the same scenario, alerts and settings."""
    conn = duckdb.connect(str(replay_dir / "replay-spy-2013-10" / "tandem.duckdb"), read_only=True)
    try:
        live_orders = conn.execute(
            f"SELECT {ORDER_COLUMNS}, status, CASE WHEN intent = 'exit' THEN reason END "
            "FROM orders WHERE engine = 'live' ORDER BY created_at, idempotency_key"
        ).fetchall()
        live_fills = conn.execute(
            "SELECT o.client_order_id, t.fill_id, t.side, t.quantity, t.price, t.filled_at "
            "FROM trades t JOIN orders o ON t.order_id = o.order_id "
            "ORDER BY t.filled_at, o.client_order_id"
        ).fetchall()
        shadow_fills = conn.execute(
            "SELECT client_order_id, side, quantity, price, filled_at FROM shadow_trades "
            "ORDER BY filled_at, client_order_id"
        ).fetchall()
    finally:
        conn.close()
    env = {**os.environ, "TANDEM_DATA_DIR": str(data_dir), "TANDEM_NUM_CPUS": "2"}
    env.pop("TANDEM_META_THRESHOLD", None)
    tandem = Path(sys.executable).parent / "tandem"
    done = subprocess.run(
        [str(tandem), "backtest", "--run-id", "parity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    shard = data_dir / "backtests" / "parity" / "shards"
    orders = pl.read_parquet(shard / "*" / "orders.parquet").sort("created_at", "order_key")
    fills = pl.read_parquet(shard / "*" / "trades.parquet").sort("filled_at", "client_order_id")
    bt_orders = [
        (
            r["order_key"],
            r["client_order_id"],
            r["intent"],
            r["side"],
            r["quantity"],
            r["instrument"],
            r["created_at"],
            r["status"],
            r["reason"] if r["intent"] == "exit" else None,
        )
        for r in orders.iter_rows(named=True)
    ]
    bt_fills = [
        (r["client_order_id"], r["fill_id"], r["side"], r["quantity"], r["price"], r["filled_at"])
        for r in fills.iter_rows(named=True)
    ]
    assert len(live_orders) >= 12
    assert bt_orders == [tuple(r) for r in live_orders]
    assert bt_fills == [tuple(r) for r in live_fills]

    # Engine 2: the replay routes half of the entries to B (per signal, experiment ab-1,
    # meta threshold 30); a B backtest with the same split makes the same shadow trades.
    env = {**env, "TANDEM_META_THRESHOLD": "30", "TANDEM_EXPERIMENT_UNIT": "signal"}
    args = ["--variant", "B", "--split-pct", "50", "--experiment", "ab-1", "--run-id", "parity-b"]
    done = subprocess.run(
        [str(tandem), "backtest", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    shadow = pl.read_parquet(
        data_dir / "backtests" / "parity-b" / "shards" / "*" / "trades.parquet"
    )
    bt_shadow = [
        (r["client_order_id"], r["side"], r["quantity"], r["price"], r["filled_at"])
        for r in shadow.sort("filled_at", "client_order_id").iter_rows(named=True)
    ]
    assert shadow_fills, "the replay made no shadow trade"
    assert bt_shadow == [(c, s, int(q), p, t) for c, s, q, p, t in shadow_fills]
