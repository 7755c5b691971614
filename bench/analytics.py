"""Experiment results over 10 M shadow trades: DuckDB against pandas on the same Parquet
event log, and POST /webhook latency with and without the analytics running.

Data: generated here, in a temporary directory, through the real `EventLog.land` (files
of about 1 M events, zstd, the event log's schema, JSON payloads as the Store writes
them). `--trades N` shadow trades (default 10 M) come from 2N signals split 50/50 by
session unit (DuckDB's hash of symbol|timeframe|date, 100 symbols, 50 signals per
unit): each signal has its `experiment_assigned` event and Engine 1's `position_closed`,
and each of B's its shadow `position_closed`; 5N events in all (the log holds only the
kinds the query reads). `--smoke` uses 20 k trades (100 k events).

Timed, each from the files to the finished `ExperimentResults`:

- duckdb: `storage.analytics.experiment_results` (`engine.analytics.RESULTS_SQL` on the
  log's live segments); the figure is the median of `--repeats` runs, after one untimed;
- pandas: the same computation in pandas (pyarrow's JSON reader decodes the payloads:
  `json.loads` per row would take minutes and more memory than the machine has);
  both answers are checked equal, or the bench fails;
- for where the time goes (one run each): `duckdb_events_sql_s`, the same query on
  `storage.eventlog.events_sql` (every row deduplicated by `seq`), and `duckdb_typed_s`,
  the statistics part (`RESULTS_STATS_SQL`) on the decoded events stored as typed
  Parquet: what the query costs without decoding JSON.

Webhooks (`--webhook-seconds`, 0 skips): a real `tandem run --no-replay` (Ray; under
`--smoke` the plain uvicorn server of bench/webhook.py instead, without Ray) takes
distinct alerts at a steady `--rate` (20/s, well above what TradingView sends; Engine 1
processes every accepted one) on one keep-alive connection; p50/p99/max of the
acknowledgement's round trip, after bench/webhook.py's warm-up, first quiet, then while
another process runs the results query in a loop on the generated log (nice 0 and
DuckDB's default threads, a notebook's worst case, unless `--loop-nice`/`--loop-threads`),
then quiet again. Ray's workers run at nice 15.

Goal (issue 7): DuckDB < 1 s for 10 M trades; reads never delay a webhook
acknowledgement. Reported, never asserted. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import analytics as an  # noqa: E402
from storage import analytics as sa  # noqa: E402
from storage.eventlog import EVENT_SCHEMA, EventLog  # noqa: E402

EXPERIMENT = "bench-1"
FULL_TRADES = 10_000_000
SMOKE_TRADES = 20_000
GOAL_S = 1.0
SYMBOLS = 100
PER_UNIT = 50  # signals per symbol and day
EVENTS_PER_FILE = 1_000_000
MEMORY_LIMIT = "6GB"
SPILL_ENV = "TANDEM_BENCH_SPILL"  # where DuckDB spills: the run's temporary directory

# --- the data --------------------------------------------------------------------------------

_SIGNALS = """
SELECT i, 'S' || (i % {symbols}) AS symbol, '5' AS timeframe,
       DATE '2010-01-04' + CAST(i // ({symbols} * {per_unit}) AS INTEGER) AS day,
       hash(i) AS h
FROM range({start}, {stop}) t(i)
"""

_EVENTS = """
WITH s AS ({signals}),
v AS (
    SELECT *, CAST(hash(symbol || '|' || timeframe || '|' || day) % 100 AS INTEGER) AS bucket
    FROM s
),
e AS (
    SELECT v.*, k, CASE WHEN bucket < 50 THEN 'B' ELSE 'A' END AS variant,
           CAST(day AS TIMESTAMP) + INTERVAL 15 HOUR + to_seconds(CAST(h % 21600 AS BIGINT))
               AS closed_local,
           (CAST(h % 2001 AS DOUBLE) - 980) / 10 AS pnl_live,
           (CAST((h // 7) % 2001 AS DOUBLE) - 960) / 10 AS pnl_shadow,
           250.0 * (1 + h % 4) AS cost
    FROM v, (SELECT unnest([0, 1, 2]) AS k)
    WHERE k < 2 OR bucket < 50
)
SELECT {first} + row_number() OVER (ORDER BY i, k) - 1 AS seq,
       CAST(CASE k WHEN 0 THEN CAST(day AS TIMESTAMP) + INTERVAL 14 HOUR ELSE closed_local END
            AS TIMESTAMPTZ) AS event_time,
       CAST(CASE k WHEN 0 THEN CAST(day AS TIMESTAMP) + INTERVAL 14 HOUR ELSE closed_local END
            AS TIMESTAMPTZ) AS recorded_at,
       CASE k WHEN 0 THEN 'experiment_assigned' ELSE 'position_closed' END AS kind,
       CASE k WHEN 0 THEN 'experiments' WHEN 1 THEN 'positions' ELSE 'shadow_positions' END
           AS stream,
       CASE k WHEN 0 THEN '{exp}/' || i WHEN 1 THEN 'p' || i ELSE 's' || i END AS entity_id,
       CASE k
         WHEN 0 THEN json_object('bucket', bucket, 'experiment_id', '{exp}', 'signal_id', i,
                'split_pct', 50, 'symbol', symbol, 'timeframe', timeframe, 'unit', 'session',
                'unit_key', CAST(day AS VARCHAR), 'variant', variant)
         WHEN 1 THEN json_object('closed_at', strftime(closed_local, '%Y-%m-%d %H:%M:%S+00:00'),
                'cost_basis', cost, 'engine', 'live', 'realised_pnl', pnl_live,
                'reason', 'profit_target', 'return_pct', pnl_live / cost, 'signal_id', i,
                'symbol', symbol)
         ELSE json_object('agents', ['technical', 'orb'],
                'closed_at', strftime(closed_local, '%Y-%m-%d %H:%M:%S+00:00'),
                'cost_basis', cost, 'engine', 'shadow', 'experiment_id', '{exp}',
                'meta_confidence', 72.5, 'realised_pnl', pnl_shadow, 'reason', 'stop_loss',
                'return_pct', pnl_shadow / cost, 'signal_id', i, 'symbol', symbol)
       END::VARCHAR AS payload
FROM e
"""


def conform(table: pa.Table) -> pa.Table:
    """The event log's columns: any the generator does not make (the hash chain's) null."""
    for name in EVENT_SCHEMA.names:
        if name not in table.column_names:
            table = table.append_column(
                name, pa.nulls(table.num_rows, EVENT_SCHEMA.field(name).type)
            )
    return table


def generate(directory: Path, trades: int) -> dict[str, int]:
    """Land about 5 x `trades` events (2 x `trades` signals) in `directory`."""
    log = EventLog(directory)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    signals, step = 2 * trades, EVENTS_PER_FILE * 2 // 5
    seq = 1
    for start in range(0, signals, step):
        stop = min(signals, start + step)
        params = {"symbols": SYMBOLS, "per_unit": PER_UNIT, "start": start, "stop": stop}
        sql = _EVENTS.format(signals=_SIGNALS.format(**params), first=seq, exp=EXPERIMENT)
        table = conform(con.sql(sql).to_arrow_table())
        log.land(table)
        seq += table.num_rows
    con.close()
    return {"events": seq - 1, "files": len(log.segments())}


def prepare(events: Path, trades: int) -> dict[str, int]:
    """Generate the log in `events`, unless a previous run with `--data` left one of the
    same size there."""
    marker = events / "bench.json"
    if marker.exists() and json.loads(marker.read_text()).get("trades") == trades:
        return dict(json.loads(marker.read_text())["made"])
    if events.exists():
        for path in events.glob("events-*.parquet"):
            path.unlink()
    made = generate(events, trades)
    marker.write_text(json.dumps({"trades": trades, "made": made}))
    return made


# --- DuckDB -----------------------------------------------------------------------------------


def duck_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """In memory, spilling past `MEMORY_LIMIT` to the bench's temporary directory (the
    machine is shared: DuckDB would otherwise take up to 80 % of its memory)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    spill = os.environ.get(SPILL_ENV, str(Path(tempfile.gettempdir()) / "tandem-bench-spill"))
    con.execute(f"SET temp_directory = '{spill}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def time_duckdb(directory: Path, repeats: int) -> tuple[float, an.ExperimentResults]:
    """Median seconds of `experiment_results` over `repeats` runs, after an untimed one."""
    con = duck_connection()
    results = sa.experiment_results(con, directory, EXPERIMENT)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        results = sa.experiment_results(con, directory, EXPERIMENT)
        times.append(time.perf_counter() - started)
    return statistics.median(times), results


def time_events_sql(directory: Path) -> float:
    """One run of the same query reading through `events_sql` (dedup of every row)."""
    con = duck_connection()
    sql = an.render(an.RESULTS_SQL, sa.events_sql_relation(directory))
    started = time.perf_counter()
    con.execute(sql, an.bind(sql, {"experiment_id": EXPERIMENT})).fetchall()
    return time.perf_counter() - started


def time_typed(directory: Path, scratch: Path) -> float:
    """One run of `RESULTS_STATS_SQL` on the decoded events stored as typed Parquet."""
    con = duck_connection()
    events = sa.events_relation(directory)
    values = {"experiment_id": EXPERIMENT}
    for name, template in (("assigned", an.ASSIGNED_SQL), ("closed", an.CLOSED_SQL)):
        sql = an.render(template, events)
        target = str(scratch / f"{name}.parquet")
        con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)", an.bind(sql, values))
    a, c = scratch / "assigned.parquet", scratch / "closed.parquet"
    sql = (
        f"WITH assigned AS (SELECT * FROM read_parquet('{a}')), "
        f"closed AS (SELECT * FROM read_parquet('{c}')),\n{an.RESULTS_STATS_SQL}"
    )
    started = time.perf_counter()
    con.execute(sql).fetchall()
    return time.perf_counter() - started


# --- pandas -----------------------------------------------------------------------------------

_KINDS = ["experiment_assigned", "position_closed"]


_ASSIGNED_COLUMNS = ["experiment_id", "signal_id", "variant", "unit", "symbol", "timeframe"]
_ASSIGNED_COLUMNS += ["unit_key"]
_CLOSED_COLUMNS = ["experiment_id", "signal_id", "realised_pnl", "return_pct", "closed_at"]


def decode(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The payload fields `columns` of `frame` (pyarrow's JSON reader), beside seq and
    stream; a field no payload has is all null."""
    if frame.empty:
        return frame
    lines = "\n".join(frame["payload"]).encode()
    payload = pd.read_json(io.BytesIO(lines), lines=True, engine="pyarrow")
    payload = payload.reindex(columns=columns)
    payload.index = frame.index
    return pd.concat([frame[["seq", "stream"]], payload], axis=1)


def read_events(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assignments and closed positions, decoded, each event once (by `seq`)."""
    assigned, closed = [], []
    for path in sorted(directory.glob("events-*.parquet")):
        frame = pq.read_table(
            path, columns=["seq", "kind", "stream", "payload"], filters=[("kind", "in", _KINDS)]
        ).to_pandas()
        kind = frame["kind"]
        assigned.append(decode(frame[kind == "experiment_assigned"], _ASSIGNED_COLUMNS))
        closed.append(decode(frame[kind == "position_closed"], _CLOSED_COLUMNS))
    a = pd.concat(assigned, ignore_index=True).drop_duplicates("seq")
    c = pd.concat(closed, ignore_index=True).drop_duplicates("seq")
    return a, c


def pandas_trades(assigned: pd.DataFrame, closed: pd.DataFrame) -> pd.DataFrame:
    keys = ["variant", "unit", "symbol", "timeframe", "unit_key"]
    a = assigned[["signal_id", "experiment_id", *keys]]
    live = closed[closed["stream"] == "positions"][
        ["signal_id", "realised_pnl", "return_pct", "closed_at"]
    ]
    live = live.merge(a, on="signal_id")
    live["arm"] = live["variant"].map({"A": "A", "B": "A_on_B"})
    shadow = closed[closed["stream"] == "shadow_positions"][
        ["signal_id", "experiment_id", "realised_pnl", "return_pct", "closed_at"]
    ].merge(a[a["variant"] == "B"], on=["signal_id", "experiment_id"])
    shadow["arm"] = "B"
    return pd.concat([live, shadow], ignore_index=True)


def pandas_units(assigned: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    keys = ["unit", "symbol", "timeframe", "unit_key"]
    units = assigned.groupby(["variant", *keys]).size().rename("signals").reset_index()
    arms = pd.DataFrame({"arm": ["A", "B", "A_on_B"], "variant": ["A", "B", "B"]})
    units = arms.merge(units, on="variant")
    sums = trades.groupby(["arm", *keys])["return_pct"].sum().rename("ret").reset_index()
    units = units.merge(sums, on=["arm", *keys], how="left")
    units["ret"] = units["ret"].fillna(0.0)
    return units.groupby("arm").agg(
        signals=("signals", "sum"),
        units=("ret", "size"),
        unit_mean=("ret", "mean"),
        unit_var=("ret", "var"),
    )


def pandas_drawdown(trades: pd.DataFrame) -> pd.DataFrame:
    closed_at = pd.to_datetime(trades["closed_at"], utc=True)
    day = closed_at.dt.tz_convert("America/New_York").dt.date
    daily = trades.groupby([trades["arm"], day])["realised_pnl"].sum().sort_index()
    equity = daily.groupby(level=0).cumsum()
    peak = equity.groupby(level=0).cummax().clip(lower=0.0)
    return pd.DataFrame(
        {
            "max_drawdown": (peak - equity).groupby(level=0).max(),
            "days": equity.groupby(level=0).size(),
        }
    )


def pandas_rows(assigned: pd.DataFrame, closed: pd.DataFrame) -> list[dict[str, Any]]:
    """What `RESULTS_SQL` returns, computed in pandas."""
    assigned = assigned[assigned["experiment_id"] == EXPERIMENT].sort_values("seq")
    assigned = assigned.drop_duplicates(["experiment_id", "signal_id"])
    trades = pandas_trades(assigned, closed)
    pnl = trades["realised_pnl"]
    trades = trades.assign(win=pnl > 0, profit=pnl.clip(lower=0.0), loss=(-pnl).clip(lower=0.0))
    per_trade = trades.groupby("arm").agg(
        trades=("win", "size"),
        wins=("win", "sum"),
        total_pnl=("realised_pnl", "sum"),
        avg_pnl=("realised_pnl", "mean"),
        expectancy=("return_pct", "mean"),
        gross_profit=("profit", "sum"),
        gross_loss=("loss", "sum"),
    )
    table = pandas_units(assigned, trades).join(per_trade).join(pandas_drawdown(trades))
    return [{"arm": arm, **row} for arm, row in table.to_dict("index").items()]


def time_pandas(directory: Path) -> tuple[float, an.ExperimentResults]:
    started = time.perf_counter()
    assigned, closed = read_events(directory)
    results = an.experiment_results(EXPERIMENT, pandas_rows(assigned, closed))
    return time.perf_counter() - started, results


def agree(a: Any, b: Any) -> bool:
    """Equal results, floats to 1e-6 relative (sums of millions added in other orders)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(agree(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(agree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


# --- webhooks under the analytics load ---------------------------------------------------


def query_loop(directory: Path, stop_file: Path, threads: int | None) -> None:
    """Run the results query until `stop_file` exists; print runs and mean seconds."""
    con = duck_connection(threads)
    print("started", flush=True)
    times = []
    while not stop_file.exists():
        started = time.perf_counter()
        sa.experiment_results(con, directory, EXPERIMENT)
        times.append(time.perf_counter() - started)
    mean = round(statistics.mean(times), 3) if times else None
    print(json.dumps({"runs": len(times), "mean_s": mean}), flush=True)


def start_query_loop(
    directory: Path, stop_file: Path, threads: int | None, nice: int
) -> subprocess.Popen[str]:
    cmd = ["nice", "-n", str(nice), sys.executable, __file__, "--query-loop", str(directory)]
    cmd += ["--stop-file", str(stop_file)]
    cmd += ["--loop-threads", str(threads)] if threads else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "started":
        raise RuntimeError("the analytics loop did not start")
    return proc


def stop_query_loop(proc: subprocess.Popen[str], stop_file: Path) -> dict[str, Any]:
    """Ask the loop to stop after its current query; its runs (up to 10 min to finish)."""
    stop_file.touch()
    out, _ = proc.communicate(timeout=600)
    return dict(json.loads(out.strip().splitlines()[-1]))


def paced(port: int, bodies: list[bytes], rate: float) -> dict[str, Any]:
    """POST each body to /webhook on one keep-alive connection, body i at start + i/rate
    (later if the previous answer came later); each acknowledgement's round trip."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - sent) * 1000)
        statuses[str(response.status)] += 1
    conn.close()
    ordered = sorted(latencies)
    return {
        "per_s": round(len(bodies) / (time.perf_counter() - started), 1),
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(ordered[-1], 2),
        "alerts": len(bodies),
        "statuses": dict(sorted(statuses.items())),
    }


def webhook_phases(port: int, tmp: Path, events: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Quiet, under the analytics loop, quiet again: each with alerts of its own."""
    from bench.webhook import WARMUP, alert_body, warm_up

    warm_up(port, args.secret)
    count = max(1, round(args.rate * args.webhook_seconds))
    out: dict[str, Any] = {}
    for k, phase in enumerate(("quiet", "analytics", "quiet_after")):
        first = WARMUP + k * count
        bodies = [alert_body(n, args.secret) for n in range(first, first + count)]
        if phase != "analytics":
            out[phase] = paced(port, bodies, args.rate)
            continue
        stop = tmp / "stop-loop"
        loop = start_query_loop(events, stop, args.loop_threads, args.loop_nice)
        out[phase] = paced(port, bodies, args.rate)
        out["analytics_loop"] = stop_query_loop(loop, stop)
    return out


def webhook_bench(tmp: Path, events: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server (Tandem, or the plain one under --smoke) and run the phases."""
    from bench.servers import free_port, running, tandem_run
    from bench.webhook import server_env

    port = free_port()
    data = tmp / "server"
    if args.smoke:
        cmd = [sys.executable, str(ROOT / "bench" / "webhook.py"), "--serve-baseline", str(port)]
        env, ready, server = {**os.environ}, "/livez", "plain uvicorn (no Ray)"
    else:
        cmd, env = tandem_run(port, data, ingress="direct")
        ready, server = "/health", "tandem run --no-replay"
    env.update(server_env(data, args.secret))
    data.mkdir(parents=True, exist_ok=True)
    with running(cmd, env, port, ready, log=tmp / "server.log"):
        phases = webhook_phases(port, tmp, events, args)
    threads = args.loop_threads or "default"
    loop = {"loop_threads": threads, "loop_nice": args.loop_nice}
    return {"server": server, "rate": args.rate, **loop, **phases}


# --- report -----------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"... {text}", flush=True)


def line(name: str, r: dict[str, Any]) -> str:
    others = {k: v for k, v in r["statuses"].items() if k not in ("200", "201")}
    extra = f"  other statuses {others}" if others else ""
    return (
        f"  {name:12} {r['alerts']:5} alerts at {r['per_s']:5}/s  p50 {r['p50_ms']:8} ms"
        f"  p99 {r['p99_ms']:8} ms  max {r['max_ms']:8} ms{extra}"
    )


def report_queries(figures: dict[str, Any]) -> None:
    print(f"  duckdb  {figures['duckdb_s']:8.3f} s  (median of {figures['repeats']})")
    print(f"  pandas  {figures['pandas_s']:8.3f} s  ratio pandas/duckdb {figures['ratio']}")
    print(f"  duckdb via events_sql (dedup every row by seq) {figures['duckdb_events_sql_s']} s")
    print(f"  duckdb statistics on typed Parquet (no JSON)  {figures['duckdb_typed_s']} s")
    print(f"  results agree: {figures['results_agree']}")
    met = "met" if figures["goal_met"] else "NOT met"
    print(f"  goal duckdb < {GOAL_S} s: {met}")


def report(figures: dict[str, Any]) -> None:
    print(
        f"{figures['shadow_trades']:,} shadow trades, {figures['events']:,} events in "
        f"{figures['files']} files ({figures['log_mb']} MB)"
    )
    if "duckdb_s" in figures:
        report_queries(figures)
    hooks = figures["webhook"]
    if "quiet" in hooks:
        print(f"POST /webhook on {hooks['server']}, {hooks['rate']} alerts/s:")
        for phase in ("quiet", "analytics", "quiet_after"):
            print(line(phase, hooks[phase]))
        loop = hooks["analytics_loop"]
        print(f"  analytics loop: {loop['runs']} queries finished, mean {loop['mean_s']} s")


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    hooks = figures["webhook"]
    out = {k: v for k, v in figures.items() if k != "webhook"}
    if "quiet" in hooks:
        for phase in ("quiet", "analytics", "quiet_after"):
            out[f"webhook_{phase}_p50_ms"] = hooks[phase]["p50_ms"]
            out[f"webhook_{phase}_p99_ms"] = hooks[phase]["p99_ms"]
            out[f"webhook_{phase}_per_s"] = hooks[phase]["per_s"]
        out["webhook_server"] = hooks["server"]
        out["webhook_rate"] = hooks["rate"]
        out["analytics_loop_threads"] = hooks["loop_threads"]
        out["analytics_loop_nice"] = hooks["loop_nice"]
        out["analytics_loop_runs"] = hooks["analytics_loop"]["runs"]
    else:
        out["webhook"] = "skipped"
    return {"bench": "analytics", **out}


def measure_queries(events: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    duck_s, duck = time_duckdb(events, args.repeats)
    progress(f"duckdb {duck_s:.3f} s")
    pandas_s, pand = time_pandas(events)
    progress(f"pandas {pandas_s:.3f} s")
    same = agree(asdict(duck), asdict(pand))
    if not same:
        sys.exit(f"analytics bench: DuckDB and pandas disagree:\n{asdict(duck)}\n{asdict(pand)}")
    scratch = tmp / "typed"
    scratch.mkdir()
    events_sql_s = time_events_sql(events)
    progress(f"duckdb via events_sql {events_sql_s:.3f} s")
    typed_s = time_typed(events, scratch)
    progress(f"duckdb on typed Parquet {typed_s:.3f} s")
    return {
        "duckdb_s": round(duck_s, 3),
        "pandas_s": round(pandas_s, 3),
        "ratio": round(pandas_s / duck_s, 2),
        "duckdb_events_sql_s": round(events_sql_s, 3),
        "duckdb_typed_s": round(typed_s, 3),
        "results_agree": same,
        "goal_s": GOAL_S,
        "goal_met": duck_s < GOAL_S,
        "repeats": args.repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_TRADES:,} trades")
    parser.add_argument("--trades", type=int, default=FULL_TRADES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--webhook-seconds", type=float, default=10.0, help="0 skips")
    parser.add_argument("--rate", type=float, default=20.0, help="alerts/s while measured")
    parser.add_argument("--data", type=Path, help="keep the generated log here (and reuse it)")
    parser.add_argument("--loop-threads", type=int, help="DuckDB threads of the analytics loop")
    parser.add_argument("--loop-nice", type=int, default=0, help="nice level of that loop")
    parser.add_argument("--webhook-only", action="store_true", help="skip the query timings")
    parser.add_argument("--query-loop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_loop:
        query_loop(args.query_loop, args.stop_file, args.loop_threads)
        return
    if args.smoke:
        args.trades, args.rate = SMOKE_TRADES, 50.0
        args.webhook_seconds = min(args.webhook_seconds, 0.5)
    from engine.settings import DEV_WEBHOOK_SECRET

    args.secret = os.environ.get("TANDEM_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
    loadavg = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ[SPILL_ENV] = str(tmp / "spill")
        events = args.data / "events" if args.data else tmp / "events"
        made = prepare(events, args.trades)
        size = sum(p.stat().st_size for p in events.glob("events-*.parquet"))
        figures: dict[str, Any] = {"shadow_trades": args.trades, **made}
        figures["log_mb"] = round(size / 1e6)
        progress(f"{made['events']:,} events in {made['files']} files, {figures['log_mb']} MB")
        if not args.webhook_only:
            figures |= measure_queries(events, tmp, args)
        hooks = webhook_bench(tmp, events, args) if args.webhook_seconds > 0 else {}
        figures |= {"webhook": hooks, "loadavg_before": loadavg, "smoke": args.smoke}
    report(figures)
    print(json.dumps(summary(figures)))


if __name__ == "__main__":
    main()
