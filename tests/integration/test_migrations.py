from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from engine.clock import SimClock
from engine.errors import Fatal, Rejected
from storage.migrate import MIGRATIONS_DIR, Migrator, discover

CLOCK = SimClock(datetime(2024, 1, 2, tzinfo=UTC))
ALL = [m.version for m in discover()]


def tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_down_to_zero_then_up_round_trips(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "t.duckdb"))
    m = Migrator(conn, CLOCK, None)
    assert m.up() == ALL
    full = tables(conn)
    assert {"signals", "orders", "trades", "positions", "events", "audit_log"} <= full
    assert m.down(0) == ALL[::-1]
    assert tables(conn) == {"schema_migrations"}
    assert m.up() == ALL
    assert tables(conn) == full
    assert all(s.checksum_ok for s in m.status())


def test_down_rebuilds_referenced_tables_and_keeps_their_rows(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "t.duckdb"))
    m = Migrator(conn, CLOCK, None)
    m.up()
    conn.execute(
        "INSERT INTO signals (signal_id, received_at, symbol, direction, timeframe, bar_time,"
        " dedupe_key, market_position) VALUES (1, now(), 'SPY', 'long', '1m', now(), 'k', 'long')"
    )
    conn.execute(
        "INSERT INTO orders (order_id, signal_id, idempotency_key, client_order_id, symbol,"
        " instrument, asset_class, side, quantity, status, created_at, updated_at) VALUES"
        " (7, 1, '1', 'c-1', 'SPY', 'SPY', 'equity', 'buy', 3, 'filled', now(), now())"
    )
    assert m.down(2) == ALL[2:][::-1]
    columns = {r[0] for r in conn.execute("DESCRIBE signals").fetchall()}
    assert "market_position" not in columns
    assert conn.execute("SELECT order_id, signal_id FROM orders").fetchall() == [(7, 1)]
    with pytest.raises(duckdb.ConstraintException):  # the foreign key is back in force
        conn.execute(
            "INSERT INTO orders (order_id, signal_id, idempotency_key, client_order_id, symbol,"
            " instrument, asset_class, side, quantity, status, created_at, updated_at) VALUES"
            " (8, 99, '2', 'c-2', 'SPY', 'SPY', 'equity', 'buy', 3, 'filled', now(), now())"
        )
    assert m.up() == ALL[2:]


def test_a_changed_applied_migration_is_refused(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    conn = duckdb.connect(str(tmp_path / "t.duckdb"))
    Migrator(conn, CLOCK, discover(migrations)).up()
    up = migrations / "0002_outbox.up.sql"
    up.write_text(up.read_text() + "\n-- edited after the fact\n")
    changed = Migrator(conn, CLOCK, discover(migrations))
    with pytest.raises(Fatal, match="0002_outbox was changed after it was applied"):
        changed.verify()
    with pytest.raises(Fatal, match="changed after it was applied"):
        changed.up()
    assert [s.checksum_ok for s in changed.status()] == [v != 2 for v in ALL]


def test_targets_outside_the_known_range_are_rejected(tmp_path: Path) -> None:
    m = Migrator(duckdb.connect(str(tmp_path / "t.duckdb")), CLOCK, None)
    with pytest.raises(Rejected, match="invalid_migration_target"):
        m.up(99)
    with pytest.raises(Rejected):
        m.down(-1)


def tandem(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TANDEM_DATA_DIR": str(data_dir)}
    cli = Path(sys.executable).parent / "tandem"
    return subprocess.run(
        [str(cli), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_migrate_down_zero_then_up_on_a_real_file(tmp_path: Path) -> None:
    assert tandem("migrate", "up", data_dir=tmp_path).returncode == 0
    down = tandem("migrate", "down", "0", data_dir=tmp_path)
    assert down.returncode == 0, down.stderr
    assert f"reverted: {ALL[::-1]}" in down.stdout
    status = tandem("migrate", "status", data_dir=tmp_path)
    assert status.stdout.count("pending") == len(ALL)
    up = tandem("migrate", "up", data_dir=tmp_path)
    assert f"applied: {ALL}" in up.stdout
    assert tandem("migrate", "status", data_dir=tmp_path).stdout.count("applied") == len(ALL)


def test_cli_refuses_a_database_held_by_another_process(tmp_path: Path) -> None:
    holder = duckdb.connect(str(tmp_path / "tandem.duckdb"))
    try:
        result = tandem("migrate", "status", data_dir=tmp_path)
    finally:
        holder.close()
    assert result.returncode == 2
    assert "in use by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_setting_is_one_line_without_traceback(tmp_path: Path) -> None:
    env_port = {"TANDEM_PORT": "eighty"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tandem"), "run"],
        env={**os.environ, **env_port, "TANDEM_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tandem: configuration error: TANDEM_PORT:")
