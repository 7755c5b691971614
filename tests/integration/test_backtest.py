"""`run_backtest` on the session's real local Ray: shards as tasks, Parquet, the summary,
and a cancelled run (Ctrl-C) that keeps its finished shards."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from api.backtest import BacktestRequest, run_backtest
from engine.adapters.replay import bundled_data_dir
from engine.clock import LiveClock
from engine.settings import load_settings
from storage.backtests import read_manifest
from tests.integration.conftest import RAY_TIMEOUT_S, WEBHOOK_SECRET, RaySession

ALERTS = bundled_data_dir() / "alerts" / "spy-2013-10.ema-cross-5m.json"


def _request(**changes: object) -> BacktestRequest:
    base = {
        "symbols": ("SPY",),
        "start": date(2013, 10, 4),
        "end": date(2013, 10, 11),
        "instrument_mode": "option",
        "variants": ("A", "B"),
        "alerts_file": ALERTS,
        "shard_sessions": 3,
    }
    return BacktestRequest(**{**base, **changes})  # type: ignore[arg-type]


def test_shards_run_as_ray_tasks_and_the_summary_is_a_query_over_them(
    ray_session: RaySession, tmp_path: Path
) -> None:
    settings = load_settings({"TANDEM_DATA_DIR": str(tmp_path)})
    seen: list[tuple[int, int]] = []
    run_dir, rows = run_backtest(
        _request(),
        settings,
        LiveClock(),
        run_id="two-variants",
        progress=lambda d, t: seen.append((d, t)),
    )
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "done"
    assert len(manifest["shards"]) == 4  # 2 pieces of 3 sessions × 2 variants
    assert {s["status"] for s in manifest["shards"]} == {"done"}
    assert seen[-1] == (4, 4)
    assert sum(s["bars"] for s in manifest["shards"] if s["variant"] == "A") == 2340
    assert [r["variant"] for r in rows] == ["A", "B"]
    orders = pl.read_parquet(run_dir / "shards" / "*" / "orders.parquet")
    a = orders.filter(pl.col("variant") == "A")
    # The whole week in one shard makes 12 orders (LowProfitPairs refuses one entry after
    # two losing round trips). Cut at 2013-10-09, the second piece starts with no closed
    # trades, so nothing locks SPY there: 14 orders, every entry and its exit.
    assert a.height == 14
    assert rows[0]["orders"] == 14
    assert set(a["status"]) == {"filled"}


def test_ctrl_c_cancels_the_running_shards_and_keeps_the_finished(
    ray_session: RaySession, tmp_path: Path
) -> None:
    settings = load_settings({"TANDEM_DATA_DIR": str(tmp_path)})

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the user presses Ctrl-C once the first shard is in

    run_dir, _rows = run_backtest(
        _request(shard_sessions=1, variants=("A",)),
        settings,
        LiveClock(),
        run_id="cancelled",
        progress=interrupt,
    )
    manifest = json.loads((run_dir / "run.json").read_text())
    statuses = [s["status"] for s in manifest["shards"]]
    assert manifest["status"] == "cancelled"
    assert statuses.count("done") == 1
    assert set(statuses) == {"done", "cancelled"}
    done = next(s["shard_id"] for s in manifest["shards"] if s["status"] == "done")
    assert [p.name for p in (run_dir / "shards").iterdir()] == [done]


def test_an_unknown_strategy_fails_before_any_shard(
    ray_session: RaySession, tmp_path: Path
) -> None:
    from engine.errors import NotFound, Rejected

    settings = load_settings({"TANDEM_DATA_DIR": str(tmp_path)})
    with pytest.raises((NotFound, Rejected)):
        run_backtest(_request(alerts_file=None, strategy="no-such"), settings, LiveClock())
    assert not (tmp_path / "backtests").exists()


def test_a_backtest_shares_the_ray_with_a_running_tandem(
    ray_session: RaySession, api: httpx.Client, tmp_path: Path
) -> None:
    """While a backtest's shards run on the session's Ray, the live app keeps answering and
    deciding alerts: its actors ask for no CPU, the shards leave one CPU free and run at
    a lower priority."""
    settings = load_settings({"TANDEM_DATA_DIR": str(tmp_path)})
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(
            run_backtest,
            _request(shard_sessions=1, variants=("A",)),
            settings,
            LiveClock(),
            run_id="beside-tandem",
        )
        answers = []
        minute = datetime(2013, 10, 8, 14, 0, tzinfo=UTC)
        while not running.done() and len(answers) < 200:
            body = {
                "symbol": "QQQ",  # not in the replay: decided (refused), never a position
                "direction": "long",
                "timeframe": "1",
                "timestamp": (minute + timedelta(minutes=len(answers))).isoformat(),
                "secret": WEBHOOK_SECRET,
                "strategy": "beside-backtest",
            }
            answers.append(api.post("/webhook", json=body).status_code)
        run_dir, _rows = running.result(timeout=300)
    assert answers and set(answers) <= {200, 201}
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "done" and len(manifest["shards"]) == 6
    # the alerts the app took meanwhile are signals its pipeline decides
    created = answers.count(201)
    deadline = time.monotonic() + RAY_TIMEOUT_S
    while True:
        page = api.get(
            "/signals", params={"symbol": "QQQ", "limit": 500}, headers=_viewer(ray_session)
        )
        mine = [r for r in page.json()["items"] if r["strategy"] == "beside-backtest"]
        if len(mine) == created and all(r["status"] != "received" for r in mine):
            break
        assert time.monotonic() < deadline, f"{len(mine)} of {created} signals, not all decided"
        time.sleep(0.2)


def _viewer(session: RaySession) -> dict[str, str]:
    from engine.tokens import Role, issue_token

    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, 't', Role.VIEWER, datetime.now(UTC))}"}
