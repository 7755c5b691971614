"""Experiment analytics (engine.analytics via storage.analytics) on a real Parquet event log.

A synthetic experiment is written through the real writers (`Event` -> `event_row` ->
`EventLog.land`), with the log's untidy corners: a range a compaction left twice, a temp
file, events of another experiment and of other kinds. Every figure is checked against an
independent computation in pandas on the ground truth the builder kept (not on the
Parquet), and the tests against scipy's `ttest_ind` and a golden z-test.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from engine import analytics as an
from engine.events import Event
from storage import analytics as sa
from storage.eventlog import EVENT_SCHEMA, EventLog, segment_name
from storage.writes import event_row

ROOT = Path(__file__).resolve().parents[2]
EXP = "ab-1"
SYMBOLS = ("SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "NVDA", "TSLA")
DAYS = tuple(date(2024, 1, 2) + timedelta(days=d) for d in range(14) if d % 7 not in (4, 5))
AGENTS = (("technical", "core"), ("context", "core"), ("orb", "specialist"))
NY = "America/New_York"


@dataclass
class Truth:
    """What the builder wrote, as plain records: the answers come from these."""

    assigned: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)  # closed, with `arm`
    votes: list[dict[str, Any]] = field(default_factory=list)
    opened: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def bucket(symbol: str, day: date) -> int:
    return int(hashlib.sha256(f"{symbol}|5|{day}".encode()).hexdigest(), 16) % 100


def closed_event(stream: str, position: str, trade: dict[str, Any], at: datetime) -> Event:
    payload = {
        "engine": "live" if stream == "positions" else "shadow",
        "signal_id": trade["signal_id"],
        "symbol": trade["symbol"],
        "realised_pnl": trade["pnl"],
        "cost_basis": trade["cost"],
        "return_pct": trade["pnl"] / trade["cost"],
        "reason": trade["reason"],
        "closed_at": at,
    }
    if stream == "shadow_positions":
        payload |= {
            "experiment_id": trade["experiment_id"],
            "agents": trade["agents"],
            "meta_confidence": trade["meta_confidence"],
        }
    return Event("position_closed", stream, at, payload, position)


def build(seed: int = 7) -> Truth:
    """About 80 units (symbol x day), 1-3 signals each, split 50 %: Engine 1 closes most
    signals, B closes most of its own, some shadow positions stay open."""
    rng = random.Random(seed)
    truth = Truth()
    signal_id = 1000
    for day in DAYS:
        for symbol in SYMBOLS:
            b = bucket(symbol, day)
            variant = "B" if b < 50 else "A"
            for _ in range(rng.randint(1, 3)):
                signal_id += 1
                add_signal(truth, rng, signal_id, symbol=symbol, day=day, variant=variant, b=b)
    add_noise(truth, rng)
    return truth


def add_signal(
    truth: Truth, rng: random.Random, sid: int, *, symbol: str, day: date, variant: str, b: int
) -> None:
    at = datetime(day.year, day.month, day.day, 15, tzinfo=UTC) + timedelta(minutes=sid % 240)
    direction = rng.choice(("long", "short"))
    record = {
        "experiment_id": EXP,
        "signal_id": sid,
        "variant": variant,
        "bucket": b,
        "unit": "session",
        "unit_key": day.isoformat(),
        "split_pct": 50,
        "symbol": symbol,
        "timeframe": "5",
    }
    truth.assigned.append(record | {"assigned_at": at})
    truth.events.append(Event("signal_received", "signals", at, {"symbol": symbol}, str(sid)))
    truth.events.append(Event("experiment_assigned", "experiments", at, record, f"{EXP}/{sid}"))
    if rng.random() < 0.85:
        close_at = closing_time(rng, day)
        trade = a_trade(rng, sid, symbol, edge=0.0)
        truth.trades.append(trade | {"arm": "A" if variant == "A" else "A_on_B", "at": close_at})
        truth.events.append(closed_event("positions", f"p{sid}", trade, close_at))
    if variant == "B":
        add_shadow(truth, rng, sid, symbol=symbol, day=day, at=at, way=direction)


def add_shadow(
    truth: Truth, rng: random.Random, sid: int, *, symbol: str, day: date, at: datetime, way: str
) -> None:
    backing = []
    for agent, group in AGENTS:
        if agent == "orb" and symbol not in ("SPY", "QQQ"):
            continue
        bias = rng.choice(("long", "short", "neutral"))
        confidence = float(rng.randint(0, 18) * 5)
        vote = {"experiment_id": EXP, "signal_id": sid, "agent": agent, "bias": bias}
        vote |= {"confidence": confidence, "group": group, "at": at}
        truth.votes.append(vote)
        payload = {k: v for k, v in vote.items() if k != "at"}
        payload |= {"veto": False, "reasons": ["r"], "features": {}, "config": {}}
        payload |= {"version": "1"}
        truth.events.append(Event("agent_decided", "engine2", at, payload, f"{EXP}/{sid}"))
        backing += [agent] if bias == way else []
    risk = {"experiment_id": EXP, "signal_id": sid, "agent": "risk", "bias": "neutral"}
    truth.votes.append(risk | {"confidence": 0.0, "group": "core", "at": at})
    truth.events.append(Event("agent_decided", "engine2", at, risk | {"confidence": 0.0}))
    roll = rng.random()
    if roll > 0.8:
        return  # B did not trade this one
    position = f"s{sid}"
    opened = {"experiment_id": EXP, "signal_id": sid, "symbol": symbol, "price": 1.5}
    truth.events.append(Event("position_opened", "shadow_positions", at, opened, position))
    if roll > 0.7:
        truth.opened.append(opened | {"position_id": position, "opened_at": at})
        return  # still open
    close_at = closing_time(rng, day)
    trade = a_trade(rng, sid, symbol, edge=4.0) | {
        "experiment_id": EXP,
        "agents": backing,
        "meta_confidence": 70.0,
    }
    truth.trades.append(trade | {"arm": "B", "at": close_at, "position_id": position})
    truth.events.append(closed_event("shadow_positions", position, trade, close_at))


def a_trade(rng: random.Random, sid: int, symbol: str, edge: float) -> dict[str, Any]:
    pnl = 0.0 if rng.random() < 0.05 else round(rng.gauss(edge, 30.0), 2)
    reason = rng.choice(("profit_target", "stop_loss", "session_end"))
    cost = 250.0 * rng.randint(1, 4)
    return {"signal_id": sid, "symbol": symbol, "pnl": pnl, "cost": cost, "reason": reason}


def closing_time(rng: random.Random, day: date) -> datetime:
    """Mostly in the session; some at 01:30 UTC next day (still `day` in New York)."""
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if rng.random() < 0.1:
        return base + timedelta(days=1, hours=1, minutes=30)
    return base + timedelta(hours=16, minutes=rng.randint(0, 240))


def add_noise(truth: Truth, rng: random.Random) -> None:
    """Events the results must not count: another experiment's assignment and shadow
    trade, an Engine 1 trade on a signal no experiment assigned."""
    first = truth.assigned[0]
    later = first["assigned_at"] + timedelta(hours=1)
    other = {k: v for k, v in first.items() if k != "assigned_at"}
    other |= {"experiment_id": "ab-0", "signal_id": 1, "variant": "B"}
    truth.events.append(Event("experiment_assigned", "experiments", later, other))
    trade = a_trade(rng, 1, "SPY", 0.0) | {"experiment_id": "ab-0", "agents": []}
    trade |= {"meta_confidence": 60.0}
    truth.events.append(closed_event("shadow_positions", "s1", trade, later))
    stray = a_trade(rng, 999, "SPY", 0.0)
    truth.events.append(closed_event("positions", "p999", stray, later))


def land(truth: Truth, directory: Path, chunk: int = 97) -> EventLog:
    """Land the events in seq order, `chunk` per file, then leave the log as a compaction
    cut short leaves it (a merged file beside the files it covers) plus a temp file."""
    ordered = sorted(truth.events, key=lambda e: e.event_time)
    rows = [event_row(e, i + 1, e.event_time, e.entity_id) for i, e in enumerate(ordered)]
    log = EventLog(directory)
    for start in range(0, len(rows), chunk):
        log.land(pa.Table.from_pylist(rows[start : start + chunk], schema=EVENT_SCHEMA))
    segments = log.segments()
    if len(segments) < 2:
        return log
    first, second = segments[:2]
    merged = pa.concat_tables([pq.read_table(first.path), pq.read_table(second.path)])
    pq.write_table(merged.cast(EVENT_SCHEMA), directory / segment_name(first.first, second.last))
    (directory / (segment_name(len(rows) + 1, len(rows) + 50) + ".tmp")).write_bytes(b"PAR1 half")
    return log


@pytest.fixture(scope="module")
def truth() -> Truth:
    return build()


@pytest.fixture(scope="module")
def events_dir(truth: Truth, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("events")
    land(truth, directory)
    return directory


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    conn.execute("SET enable_progress_bar = false")
    yield conn
    conn.close()


# --- the independent computation ----------------------------------------------------------


def trades_frame(truth: Truth) -> pd.DataFrame:
    frame = pd.DataFrame(truth.trades)
    frame["ret"] = frame["pnl"] / frame["cost"]
    return frame


def units_frame(truth: Truth) -> pd.DataFrame:
    """Per arm and unit: the sum of returns (0 for a unit with no trade)."""
    assigned = pd.DataFrame(truth.assigned)
    trades = trades_frame(truth).merge(
        assigned[["signal_id", "symbol", "unit_key"]], on=["signal_id", "symbol"]
    )
    sums = trades.groupby(["arm", "symbol", "unit_key"])["ret"].sum()
    rows = []
    for (variant, symbol, key), _ in assigned.groupby(["variant", "symbol", "unit_key"]):
        for arm in ("A",) if variant == "A" else ("B", "A_on_B"):
            rows.append({"arm": arm, "ret": float(sums.get((arm, symbol, key), 0.0))})
    return pd.DataFrame(rows)


def max_drawdown(arm: pd.DataFrame) -> float:
    days = pd.to_datetime(arm["at"], utc=True).dt.tz_convert(NY).dt.date
    equity = arm.groupby(days)["pnl"].sum().sort_index().cumsum()
    peak = equity.cummax().clip(lower=0.0)
    return float((peak - equity).max()) if len(equity) else 0.0


def expected_arm(truth: Truth, arm: str) -> dict[str, Any]:
    trades = trades_frame(truth)
    t = trades[trades["arm"] == arm]
    wins = int((t["pnl"] > 0).sum())
    gross_profit = float(t.loc[t["pnl"] > 0, "pnl"].sum())
    gross_loss = float(-t.loc[t["pnl"] < 0, "pnl"].sum())
    units = units_frame(truth)
    u = units[units["arm"] == arm]["ret"]
    variant = "A" if arm == "A" else "B"
    return {
        "signals": sum(1 for a in truth.assigned if a["variant"] == variant),
        "units": len(u),
        "trades": len(t),
        "wins": wins,
        "win_rate": wins / len(t),
        "total_pnl": float(t["pnl"].sum()),
        "avg_pnl": float(t["pnl"].mean()),
        "expectancy": float(t["ret"].mean()),
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": gross_profit / gross_loss,
        "max_drawdown": max_drawdown(t),
        "days": int(pd.to_datetime(t["at"], utc=True).dt.tz_convert(NY).dt.date.nunique()),
        "unit_mean_return": float(u.mean()),
        "unit_var_return": float(u.var(ddof=1)),
    }


def unit_returns(truth: Truth, arm: str) -> list[float]:
    units = units_frame(truth)
    return [float(x) for x in units[units["arm"] == arm]["ret"]]


def assert_close(got: Any, want: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (DuckDB's parallel sums may add in another order)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), path
    else:
        assert got == want, path


# --- results ------------------------------------------------------------------------------


def test_every_arm_figure_matches_pandas_on_the_ground_truth(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    results = sa.experiment_results(con, events_dir, EXP)
    assert set(results.arms) == {"A", "B", "A_on_B"}
    for arm, stats_ in results.arms.items():
        got = asdict(stats_)
        for name, value in expected_arm(truth, arm).items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (arm, name)


def test_the_untidy_log_is_counted_once(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """The compaction leftover really doubles rows in a plain glob; neither it, the temp
    file nor the other experiment reaches the results."""
    glob = str(events_dir / "events-*.parquet")
    raw = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()
    assert raw is not None and raw[0] > len(truth.events)
    results = sa.experiment_results(con, events_dir, EXP)
    assert results.arms["B"].trades == sum(t["arm"] == "B" for t in truth.trades)
    assert sa.experiment_results(con, events_dir, "ab-0").arms["B"].trades == 1
    assert sa.experiment_results(con, events_dir, "nope").arms["A"].trades == 0


def test_events_sql_reads_the_same_results(
    events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """The live-segment listing and `events_sql`'s dedup by seq are the same events."""
    sql = an.render(an.RESULTS_SQL, sa.events_sql_relation(events_dir))
    cursor = con.execute(sql, an.bind(sql, {"experiment_id": EXP}))
    names = [d[0] for d in cursor.description]
    by_seq = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    listed = sa.run(con, an.RESULTS_SQL, events_dir, {"experiment_id": EXP})
    assert len(by_seq) == len(listed) == 3
    for mine, theirs in zip(listed, by_seq, strict=True):
        assert_close(mine, theirs)


def test_welch_matches_scipy_on_per_unit_returns(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    results = sa.experiment_results(con, events_dir, EXP)
    for comparison in results.comparisons:
        treated = unit_returns(truth, comparison.treatment)
        control = unit_returns(truth, comparison.control)
        ref = stats.ttest_ind(treated, control, equal_var=False)
        ci = ref.confidence_interval(0.95)
        w = comparison.welch
        assert w.status == "ok"
        assert (w.n_treatment, w.n_control) == (len(treated), len(control))
        assert w.estimate == pytest.approx(
            sum(treated) / len(treated) - sum(control) / len(control)
        )
        assert w.statistic == pytest.approx(ref.statistic, rel=1e-9)
        assert w.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert w.df == pytest.approx(ref.df, rel=1e-9)
        assert (w.ci_low, w.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_win_rate_z_test_matches_a_hand_computation(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    results = sa.experiment_results(con, events_dir, EXP)
    trades = trades_frame(truth)
    for comparison in results.comparisons:
        a = trades[trades["arm"] == comparison.treatment]["pnl"] > 0
        b = trades[trades["arm"] == comparison.control]["pnl"] > 0
        p1, p2, n1, n2 = a.mean(), b.mean(), len(a), len(b)
        pooled = (a.sum() + b.sum()) / (n1 + n2)
        z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        half = 1.959963984540054 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        got = comparison.win_rate
        assert got.status == "ok"
        assert got.estimate == pytest.approx(p1 - p2)
        assert got.statistic == pytest.approx(z)
        assert got.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
        assert (got.ci_low, got.ci_high) == pytest.approx((p1 - p2 - half, p1 - p2 + half))


@pytest.mark.parametrize(
    ("counts", "golden"),
    [
        # checked against statsmodels' proportions_ztest and confint_proportions_2indep(wald)
        (
            (45, 100, 30, 100),
            (0.15, 2.1908902300206647, 0.02845973691631057, 0.0174304933, 0.2825695067),
        ),
        (
            (12, 40, 21, 50),
            (-0.12, -1.1738783713068444, 0.24044374685974867, -0.3171883520, 0.0771883520),
        ),
    ],
)
def test_two_proportion_z_test_golden(
    counts: tuple[int, int, int, int], golden: tuple[float, ...]
) -> None:
    assert an.proportions_z_test(*counts) == pytest.approx(golden, rel=1e-8)
    try:
        import numpy as np
        from statsmodels.stats.proportion import proportions_ztest
    except ImportError:
        return
    w1, n1, w2, n2 = counts
    z, p = proportions_ztest(np.array([w1, w2]), np.array([n1, n2]))
    assert an.proportions_z_test(*counts)[1:3] == pytest.approx((z, p), rel=1e-9)


def test_below_min_units_the_answer_is_insufficient_sample(
    events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    results = sa.experiment_results(con, events_dir, EXP, min_units=40)
    for comparison in results.comparisons:  # B has 36 units
        for test in (comparison.welch, comparison.win_rate):
            assert test.status == "insufficient sample"
            assert (test.p_value, test.ci_low, test.ci_high) == (None, None, None)
    assert results.arms["B"].trades > 0  # the figures are still there


def test_an_empty_or_missing_log_reads_as_no_trades(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    for directory in (tmp_path, tmp_path / "missing"):
        results = sa.experiment_results(con, directory, EXP)
        assert [a.trades for a in results.arms.values()] == [0, 0, 0]
        assert results.arms["A"].win_rate is None and results.arms["A"].profit_factor is None
        assert results.comparisons[0].welch.status == "insufficient sample"
    assert not (tmp_path / "missing").exists()


# --- properties ---------------------------------------------------------------------------

PNL = st.one_of(st.just(0.0), st.floats(-500, 500, allow_nan=False).map(lambda x: round(x, 2)))


@given(
    st.lists(
        st.tuples(st.sampled_from(("A", "B")), PNL, st.integers(0, 9)), min_size=1, max_size=40
    )
)
def test_arm_figures_hold_their_definitions(trades: list[tuple[str, float, int]]) -> None:
    """Win rate in [0, 1]; profit factor = gross profit / gross loss; 0 <= max drawdown
    <= gross loss; trades and total P&L as written."""
    events = []
    for i, (variant, pnl, day) in enumerate(trades):
        at = datetime(2024, 3, 1, 15, tzinfo=UTC) + timedelta(days=day)
        record = {"experiment_id": EXP, "signal_id": i, "variant": variant, "bucket": 0}
        record |= {"unit": "signal", "unit_key": str(i), "split_pct": 50}
        record |= {"symbol": "SPY", "timeframe": "5"}
        events.append(Event("experiment_assigned", "experiments", at, record))
        trade = {"signal_id": i, "symbol": "SPY", "pnl": pnl, "cost": 100.0, "reason": "x"}
        stream = "positions" if variant == "A" else "shadow_positions"
        trade |= {"experiment_id": EXP, "agents": [], "meta_confidence": 1.0}
        events.append(closed_event(stream, f"p{i}", trade, at + timedelta(hours=1)))
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect() as conn:
        land(Truth(events=events), Path(tmp), chunk=1000)
        results = sa.experiment_results(conn, tmp, EXP)
    for arm in ("A", "B"):
        got = results.arms[arm]
        pnls = [p for v, p, _ in trades if v == arm]
        assert got.trades == len(pnls)
        assert got.total_pnl == pytest.approx(sum(pnls), abs=1e-6)
        assert got.win_rate is None or 0.0 <= got.win_rate <= 1.0
        gross_loss = -sum(p for p in pnls if p < 0)
        assert got.gross_loss == pytest.approx(gross_loss, abs=1e-6)
        if got.profit_factor is not None:
            assert got.profit_factor == pytest.approx(got.gross_profit / got.gross_loss)
        else:
            assert got.gross_loss == 0
        assert -1e-6 <= got.max_drawdown <= gross_loss + 1e-6


@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_z_test_is_antisymmetric_and_its_interval_holds_the_estimate(
    n1: int, n2: int, data: st.DataObject
) -> None:
    w1, w2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    diff, z, p, low, high = an.proportions_z_test(w1, n1, w2, n2)
    back = an.proportions_z_test(w2, n2, w1, n1)
    assert 0.0 <= p <= 1.0
    assert low <= diff <= high
    assert back[0] == pytest.approx(-diff) and back[1] == pytest.approx(-z)
    assert back[2] == pytest.approx(p)


# --- agents -------------------------------------------------------------------------------


def expected_agents(truth: Truth) -> dict[str, dict[str, Any]]:
    votes = pd.DataFrame(truth.votes)
    trades = trades_frame(truth)
    shadow = trades[trades["arm"] == "B"][["signal_id", "pnl", "ret", "agents"]]
    scored = votes.merge(shadow, on="signal_id")
    scored["backed"] = [
        a in agents for a, agents in zip(scored["agent"], scored["agents"], strict=True)
    ]
    scored["won"] = scored["pnl"] > 0
    out = {}
    for agent, mine in votes.groupby("agent"):
        s = scored[scored["agent"] == agent]
        backed = s[s["backed"]]
        f = s[s["bias"].isin(["long", "short"])].copy()
        f["forecast"] = f["confidence"] / 100
        f["hit"] = (f["backed"] == f["won"]).astype(float)
        f["bucket"] = (f["confidence"] // 10 * 10).clip(upper=90).astype(int)
        calibration = [
            {
                "bucket": int(b),
                "n": len(g),
                "mean_forecast": g["forecast"].mean(),
                "hit_rate": g["hit"].mean(),
            }
            for b, g in sorted(f.groupby("bucket"), key=lambda x: x[0])
        ]
        out[str(agent)] = {
            "agent": agent,
            "activations": len(mine),
            "trades": len(backed),
            "wins": int(backed["won"].sum()),
            "win_rate": float(backed["won"].mean()) if len(backed) else None,
            "avg_pnl": float(backed["pnl"].mean()) if len(backed) else None,
            "expectancy": float(backed["ret"].mean()) if len(backed) else None,
            "forecasts": len(f),
            "brier": float(((f["forecast"] - f["hit"]) ** 2).mean()) if len(f) else None,
            "calibration": [
                {k: float(v) if k in ("mean_forecast", "hit_rate") else v for k, v in c.items()}
                for c in calibration
            ],
        }
    return out


def test_agent_performance_matches_pandas(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    got = {p.agent: asdict(p) for p in sa.agent_performance(con, events_dir, an.ListFilter())}
    want = expected_agents(truth)
    assert set(got) == {"technical", "context", "orb", "risk"}
    for agent in want:
        assert_close(got[agent], want[agent], agent)
    assert got["risk"]["forecasts"] == 0 and got["risk"]["brier"] is None
    assert all(0 <= p["brier"] <= 1 for p in got.values() if p["brier"] is not None)


def test_agent_performance_filters_by_agent_and_vote_time(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    only = sa.agent_performance(con, events_dir, an.ListFilter(agent="orb"))
    assert [p.agent for p in only] == ["orb"]
    since = datetime(2024, 1, 9, tzinfo=UTC)
    later = sa.agent_performance(con, events_dir, an.ListFilter(agent="orb", since=since))
    want = sum(1 for v in truth.votes if v["agent"] == "orb" and v["at"] >= since)
    assert 0 < later[0].activations == want < only[0].activations


# --- lists --------------------------------------------------------------------------------


def test_experiments_list_filters_and_pages(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    everything = sa.list_experiments(con, events_dir, an.ListFilter(experiment_id=EXP, limit=500))
    assert len(everything) == len(truth.assigned)
    assert [r["assigned_at"] for r in everything] == sorted(
        (r["assigned_at"] for r in everything), reverse=True
    )
    by_signal = {a["signal_id"]: a for a in truth.assigned}
    assert all(r["variant"] == by_signal[r["signal_id"]]["variant"] for r in everything)
    spy_b = an.ListFilter(experiment_id=EXP, symbol="SPY", variant="B", limit=500)
    rows = sa.list_experiments(con, events_dir, spy_b)
    want = [a for a in truth.assigned if a["symbol"] == "SPY" and a["variant"] == "B"]
    assert {r["signal_id"] for r in rows} == {a["signal_id"] for a in want}
    window = an.ListFilter(
        experiment_id=EXP,
        since=datetime(2024, 1, 8, tzinfo=UTC),
        until=datetime(2024, 1, 10, tzinfo=UTC),
    )
    dated = sa.list_experiments(con, events_dir, window)
    assert {r["assigned_at"].date() for r in dated} == {date(2024, 1, 8), date(2024, 1, 9)}
    pages = [
        sa.list_experiments(con, events_dir, an.ListFilter(experiment_id=EXP, limit=50, offset=o))
        for o in range(0, len(everything), 50)
    ]
    assert [r["seq"] for page in pages for r in page] == [r["seq"] for r in everything]
    clamped = an.ListFilter(limit=10**6, offset=-3).values()
    assert (clamped["limit"], clamped["offset"]) == (an.MAX_PAGE, 0)


def test_shadow_trades_list_filters_by_symbol_and_agent(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    shadow = [t for t in truth.trades if t["arm"] == "B"]
    rows = sa.list_shadow_trades(con, events_dir, an.ListFilter(experiment_id=EXP, limit=500))
    assert {r["position_id"] for r in rows} == {t["position_id"] for t in shadow}
    by_id = {t["position_id"]: t for t in shadow}
    for r in rows:
        t = by_id[r["position_id"]]
        assert (r["realised_pnl"], r["exit_reason"], r["agents"]) == (
            t["pnl"],
            t["reason"],
            t["agents"],
        )
        assert r["closed_at"] == t["at"]
    orb = sa.list_shadow_trades(
        con, events_dir, an.ListFilter(agent="orb", symbol="SPY", limit=500)
    )
    want = {t["position_id"] for t in shadow if "orb" in t["agents"] and t["symbol"] == "SPY"}
    assert want and {r["position_id"] for r in orb} == want


def test_shadow_positions_list_open_and_closed(
    truth: Truth, events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    page = an.ListFilter(experiment_id=EXP, limit=500)
    rows = sa.list_shadow_positions(con, events_dir, page)
    closed = {t["position_id"] for t in truth.trades if t["arm"] == "B"}
    opened = {o["position_id"] for o in truth.opened}
    assert {r["position_id"]: r["status"] for r in rows} == (
        {p: "closed" for p in closed} | {p: "open" for p in opened}
    )
    open_rows = sa.list_shadow_positions(con, events_dir, an.ListFilter(status="open", limit=500))
    assert {r["position_id"] for r in open_rows} == opened
    assert all(r["realised_pnl"] is None and r["exit_reason"] is None for r in open_rows)
    assert all(r["opened_at"] is not None for r in rows)


# --- the notebook -------------------------------------------------------------------------


def test_the_notebook_reproduces_the_results(
    events_dir: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """`notebooks/experiments.py` run as a plain script (as CI runs it) prints the same
    results as `storage.analytics`, having read the files with DuckDB and with polars."""
    script = ROOT / "notebooks" / "experiments.py"
    cmd = [sys.executable, str(script), "--events", str(events_dir), "--experiment", EXP]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "the same results as DuckDB" in done.stdout
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    want = json.loads(json.dumps(asdict(sa.experiment_results(con, events_dir, EXP))))
    assert_close(printed, want)


def script_code_cells(text: str) -> list[str]:
    """The code cells of a jupytext percent script: what follows each `# %%` line that
    is not a markdown cell, trimmed of blank lines."""
    cells = []
    for chunk in text.split("\n# %%")[1:]:
        header, _, body = chunk.partition("\n")
        if "[markdown]" not in header:
            cells.append(body.strip("\n"))
    return cells


def test_the_ipynb_holds_the_scripts_code() -> None:
    """notebooks/experiments.ipynb is generated from the script (`jupytext --sync
    notebooks/experiments.py`); CI runs the script, so the two must not drift apart."""
    notebook = json.loads((ROOT / "notebooks" / "experiments.ipynb").read_text())
    code = ["".join(c["source"]).strip("\n") for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code == script_code_cells((ROOT / "notebooks" / "experiments.py").read_text())
