"""`tandem report`: a real run directory written with pyarrow per the run-directory
contract, read back by the report; its figures checked against `engine.performance` on a
curve built here independently (carry-forward by hand)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.report import summary_table, write_report
from engine.performance import Performance, measure

CAPITAL = 10_000.0
TS = pa.timestamp("us", tz="UTC")
SESSIONS = [datetime(2024, 1, d, tzinfo=UTC) for d in (2, 3, 4, 5, 8)]
CLOSES = [d.replace(hour=21) for d in SESSIONS]
GRID = [
    {"params_id": f"p{i}", "params": {"fast": fast, "slow": slow}}
    for i, (fast, slow) in enumerate([(5, 21), (5, 34), (8, 21), (8, 34)])
]
EQUITY_SCHEMA = pa.schema(
    [("shard_id", pa.string()), ("variant", pa.string()), ("params_id", pa.string()),
     ("ts", TS), ("pnl", pa.float64())]
)  # fmt: skip
POSITIONS_SCHEMA = pa.schema(
    [("shard_id", pa.string()), ("variant", pa.string()), ("params_id", pa.string()),
     ("symbol", pa.string()), ("instrument", pa.string()), ("side", pa.string()),
     ("quantity", pa.int64()), ("multiplier", pa.int64()), ("avg_price", pa.float64()),
     ("exit_price", pa.float64()), ("opened_at", TS), ("closed_at", TS),
     ("realised_pnl", pa.float64()), ("unrealised_pnl", pa.float64()),
     ("exit_reason", pa.string()), ("status", pa.string())]
)  # fmt: skip
# (symbol, first session, last session) of each variant/params portfolio's shards: QQQ's
# range is cut in two, so its first shard's P&L is carried on while the second starts at 0
RANGES = [("SPY", 0, 4), ("QQQ", 0, 2), ("QQQ", 3, 4)]
EMPTY_SHARD = "A-p3-QQQ-3"  # no trade: its equity only, no positions file


def _write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _position(ids: dict[str, Any], pnl: float, at: datetime, closed: bool) -> dict[str, Any]:
    return {
        **ids,
        "instrument": ids["symbol"],
        "side": "long",
        "quantity": 10,
        "multiplier": 1,
        "avg_price": 100.0,
        "exit_price": 100.0 + pnl / 10 if closed else None,
        "opened_at": at - timedelta(hours=2),
        "closed_at": at if closed else None,
        "realised_pnl": pnl if closed else 0.0,
        "unrealised_pnl": 0.0 if closed else 12.5,
        "exit_reason": "signal" if closed else None,
        "status": "closed" if closed else "open",
    }


def _shard(
    run_dir: Path, rng: np.random.Generator, ids: dict[str, Any], span: range
) -> dict[str, Any]:
    """One shard's equity (a start row at the first session's open, then each close) and
    positions; returns its run.json entry with the rows written, for the expectations."""
    start = SESSIONS[span.start].replace(hour=14, minute=30)
    steps = np.round(rng.normal(5.0, 60.0, len(span)), 2)
    equity = [(start, 0.0), *zip([CLOSES[i] for i in span], np.cumsum(steps).tolist(), strict=True)]
    pnls = [] if ids["shard_id"] == EMPTY_SHARD else np.round(rng.normal(4, 40, 3), 2).tolist()
    folder = run_dir / "shards" / ids["shard_id"]
    rows = [{**{k: ids[k] for k in ("shard_id", "variant", "params_id")}, "ts": t, "pnl": p}
            for t, p in equity]  # fmt: skip
    _write(folder / "equity.parquet", rows, EQUITY_SCHEMA)
    if pnls:
        positions = [_position(ids, p, CLOSES[span[-1]], True) for p in pnls]
        positions.append(_position(ids, 0.0, CLOSES[span[-1]], False))
        _write(folder / "positions.parquet", positions, POSITIONS_SCHEMA)
    entry = {"start": str(SESSIONS[span.start].date()), "end": str(SESSIONS[span[-1]].date())}
    return {**ids, **entry, "status": "done", "bars": 390 * len(span), "seconds": 0.5,
            "_equity": equity, "_pnls": pnls}  # fmt: skip


def make_run(data_dir: Path, variants: list[str], grid: list[dict[str, Any]]) -> Path:
    run_dir = data_dir / "backtests" / "bt-1"
    rng = np.random.default_rng(11)
    shards = []
    for variant in variants:
        for g in grid:
            for n, (symbol, first, last) in enumerate(RANGES, start=1):
                sid = f"{variant}-{g['params_id']}-{symbol}-{n}"
                ids = {"shard_id": sid, "variant": variant, "params_id": g["params_id"],
                       "symbol": symbol}  # fmt: skip
                shards.append(_shard(run_dir, rng, ids, range(first, last + 1)))
    cancelled = {"shard_id": "B-p1-IWM-4", "variant": "B", "params_id": "p1", "symbol": "IWM",
                 "start": "2024-01-02", "end": "2024-01-08", "status": "cancelled",
                 "bars": 0, "seconds": 0.0}  # fmt: skip
    # a shard still being written (its hidden folder) must not count
    _write(
        run_dir / "shards" / ".A-p0-SPY-1.tmp" / "equity.parquet",
        [{"shard_id": "A-p0-SPY-1", "variant": "A", "params_id": "p0", "ts": CLOSES[4],
          "pnl": 1e6}],
        EQUITY_SCHEMA,
    )  # fmt: skip
    run = {
        "run_id": "bt-1",
        "created_at": "2024-02-01T10:00:00+00:00",
        "symbols": ["SPY", "QQQ", "IWM"],
        "start": "2024-01-02",
        "end": "2024-01-08",
        "source": {"kind": "strategy", "name": "ema-cross", "path": None},
        "instrument_mode": "equity",
        "variants": variants,
        "capital": CAPITAL,
        "grid": grid,
        "status": "done",
        "shards": [{k: v for k, v in s.items() if not k.startswith("_")} for s in shards]
        + ([cancelled] if "B" in variants else []),
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    (run_dir / "expected.json").write_text(json.dumps(_expected(shards), default=str))
    return run_dir


def _expected(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Per portfolio: capital + each shard's last P&L at or before the start and each close
    (0 before its first row), and its closed round trips."""
    out: dict[str, Any] = {}
    for key in sorted({f"{s['variant']}/{s['params_id']}" for s in shards}):
        mine = [s for s in shards if f"{s['variant']}/{s['params_id']}" == key]
        times = [SESSIONS[0].replace(hour=14, minute=30), *CLOSES]
        values = []
        for t in times:
            total = CAPITAL
            for s in mine:
                before = [p for ts, p in s["_equity"] if ts <= t]
                total += before[-1] if before else 0.0
            values.append(total)
        out[key] = {"times": times, "equity": values, "pnls": [p for s in mine for p in s["_pnls"]]}
    return out


def expected_performance(run_dir: Path) -> dict[str, Performance]:
    raw = json.loads((run_dir / "expected.json").read_text())
    return {
        key: measure([datetime.fromisoformat(t) for t in v["times"]], v["equity"], v["pnls"])
        for key, v in raw.items()
    }


class MetricsTable(HTMLParser):
    """The rows of `<table class="metrics">`: (variant, params_id, {metric: data-value})."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.rows: list[tuple[list[str], dict[str, str]]] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("class") == "metrics"
        elif self.inside and tag == "tr":
            self.rows.append(([], {}))
        elif self.inside and tag == "td":
            self._cell = ""
            if "data-metric" in a:
                self.rows[-1][1][str(a["data-metric"])] = str(a.get("data-value") or "")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif tag == "td" and self._cell is not None and self.rows:
            self.rows[-1][0].append(self._cell)
            self._cell = None


def metric_values(perf: Performance) -> dict[str, float | int | None]:
    return {
        "total_return": perf.total_return,
        "sharpe": perf.sharpe,
        "sortino": perf.sortino,
        "max_drawdown": perf.drawdown.fraction,
        "win_rate": perf.trades.win_rate,
        "profit_factor": perf.trades.profit_factor,
        "trades": perf.trades.trades,
        "expectancy": perf.trades.expectancy,
        "end_equity": perf.end_equity,
    }


def same(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, float) and math.isinf(expected):
        return bool(actual == expected)
    close: bool = actual == pytest.approx(expected, rel=1e-12, abs=1e-12)
    return close


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, ["A", "B"], GRID)


def test_the_report_is_one_self_contained_file_with_every_section(run_dir: Path) -> None:
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text("utf-8")
    for heading in ("Run", "Metrics", "Equity", "Drawdown", "Round-trip P&amp;L", "A vs B"):
        assert re.search(rf'<h2 id="\w+">{re.escape(heading)}</h2>', text), heading
    assert '<h2 id="params">Parameters</h2>' in text
    sections = dict(re.findall(r'<h2 id="(\w+)">.*?</h2>(.*?)(?=<h2 |</body>)', text, re.S))
    assert list(sections) == ["run", "metrics", "equity", "drawdown", "pnl", "ab", "params"]
    for name in ("equity", "drawdown", "pnl", "ab", "params"):
        assert sections[name].count("<svg") == 1, name
    assert text.count("<svg") == 5
    assert "<script" not in text and "<link" not in text and "<img" not in text
    assert "@import" not in text and "url(http" not in text
    # the only addresses are the SVG namespaces: names, never fetched
    for attr in re.findall(r'([\w:-]+)="https?://', text):
        assert attr in ("xmlns", "xmlns:xlink")
    assert ">fast<" in text and ">slow<" in text  # the heat map's axes
    header = text[: text.index('<h2 id="metrics">')]
    for fact in ("SPY, QQQ, IWM", "2024-01-02 to 2024-01-08", "strategy ema-cross", "equity"):
        assert fact in header
    assert "25: 24 done, 1 cancelled, 0 failed" in header


def test_the_metrics_table_holds_engine_performance_figures(run_dir: Path) -> None:
    expected = expected_performance(run_dir)
    parser = MetricsTable()
    parser.feed(write_report(run_dir).read_text("utf-8"))
    rows = [r for r in parser.rows if r[1]]
    assert [f"{cells[0]}/{cells[1]}" for cells, _ in rows] == list(expected)
    assert rows[3][0][2] == "fast=8, slow=34"
    for (cells, values), (key, perf) in zip(rows, expected.items(), strict=True):
        assert cells[3] == f"{(perf.total_return or 0.0) * 100:.2f} %"  # as shown
        for metric, want in metric_values(perf).items():
            got = None if values[metric] == "" else float(values[metric])
            assert same(got, want), (key, metric, got, want)
    # the empty shard's P&L stays out, the hidden one too, and open positions are no trades
    assert expected["A/p3"].trades.trades == 6
    assert all(perf.trades.trades in (6, 9) for perf in expected.values())
    assert all(perf.sharpe is not None for perf in expected.values())


def test_summary_table_rows(run_dir: Path) -> None:
    expected = expected_performance(run_dir)
    rows = summary_table(run_dir)
    assert [f"{r['variant']}/{r['params_id']}" for r in rows] == list(expected)
    assert rows[0]["params"] == {"fast": 5, "slow": 21}
    for row, perf in zip(rows, expected.values(), strict=True):
        for metric, want in metric_values(perf).items():
            assert same(row[metric], want), (row["params_id"], metric)


def test_one_variant_and_one_varying_parameter(tmp_path: Path) -> None:
    grid = [{"params_id": f"p{f}", "params": {"fast": f, "slow": 21}} for f in range(1, 9)]
    run_dir = make_run(tmp_path, ["A"], grid)
    out = tmp_path / "elsewhere" / "r.html"
    assert write_report(run_dir, out) == out
    text = out.read_text("utf-8")
    assert "Variant B not run." in text
    assert '<h2 id="params">Parameters</h2>' in text
    params = text[text.index('<h2 id="params">') :]
    assert "<svg" in params and ">fast<" in params and ">slow<" not in params  # bars over fast
    # eight parameter sets: every curve drawn, the histograms of the best six only
    assert "Variant A: 6 of 8 shown, the best by total return." in text
    assert not (run_dir / "report.html").exists()


def test_a_run_without_any_shard_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "backtests" / "empty"
    run_dir.mkdir(parents=True)
    run = {"run_id": "empty", "symbols": ["SPY"], "start": "2024-01-02", "end": "2024-01-02",
           "source": {"kind": "alerts", "name": None, "path": "alerts.json"},
           "instrument_mode": "option", "variants": ["A"], "capital": 5000.0,
           "grid": [{"params_id": "p0", "params": {}}], "status": "cancelled",
           "shards": [{"shard_id": "s1", "symbol": "SPY", "start": "2024-01-02",
                       "end": "2024-01-02", "params_id": "p0", "variant": "A",
                       "status": "cancelled", "bars": 0, "seconds": 0.0}]}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(run))
    text = write_report(run_dir).read_text("utf-8")
    assert "No equity was written." in text
    assert "One parameter set" in text
    [row] = summary_table(run_dir)
    assert (row["total_return"], row["sharpe"], row["max_drawdown"]) == (None, None, None)
    assert (row["trades"], row["win_rate"], row["profit_factor"]) == (0, None, None)


def test_cli_report_writes_the_file_and_prints_the_summary(run_dir: Path) -> None:
    data_dir = run_dir.parent.parent
    result = CliRunner().invoke(app, ["report", "bt-1", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert f"report: {run_dir / 'report.html'}" in result.stdout
    assert (run_dir / "report.html").is_file()
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["variant", "params", "return", "Sharpe"]
    assert sum(1 for line in lines if line.split()[:1] in (["A"], ["B"])) == 8


def test_cli_report_of_an_unknown_run_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no backtest run 'nope'" in result.stderr
    assert not list(tmp_path.rglob("*.html"))
