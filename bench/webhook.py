"""POST /webhook through Serve: accepted alerts/s and p50/p99, against two baselines.

In one run:

- tandem webhook: a real `tandem run --no-replay` (its own local Ray, direct ingress, the
  simulated clock and Engine 1's workers, which pick up every accepted signal), valid
  distinct alerts (one bar each, so none is a duplicate) POSTed to `/webhook`; only 201s
  count as accepted, every other status is reported;
- tandem no-op: the same running Tandem's `GET /livez` (no actor call): Serve alone;
- plain durable: plain uvicorn + FastAPI doing the same work without Ray (the webhook's
  checks, `engine.intake.evaluate`, its masked payload, `signal_draft`, and the same
  `InsertSignal` group-committed by an in-process `Store` on a real DuckDB file, 201
  after the commit; see `bench.servers.PlainWebhook`);
- plain no-op: that process's `GET /livez`: the load generator's ceiling here.

The generator runs in its own process at nice 19 (32 keep-alive connections); its rate
against the no-op endpoints, far above Tandem's webhook rate, shows it is not the limit.
After each server stops, the signals in its DuckDB file are counted: they must equal the
201s it answered, or the bench fails.

Goal (issue 5): >= 1,000 accepted/s with p99 < 50 ms on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import measure  # noqa: E402
from bench.servers import (  # noqa: E402
    durable_webhook_app,
    free_port,
    running,
    serve,
    tandem_run,
)
from engine.settings import DEV_WEBHOOK_SECRET, load_settings  # noqa: E402

GOAL_PER_S = 1000
GOAL_P99_MS = 50
WARMUP = 50  # sequential alerts before each measured run (first actor calls, imports)
BAR0 = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)


def alert_body(n: int, secret: str) -> bytes:
    """The n-th valid alert: one-minute bar n after BAR0, so no two are duplicates."""
    bar = BAR0 + timedelta(minutes=n)
    body = {
        "symbol": "SPY",
        "direction": "long",
        "timeframe": "1",
        "timestamp": bar.isoformat().replace("+00:00", "Z"),
        "price": 168.25,
        "strategy": "bench",
        "secret": secret,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def write_bodies(path: Path, first: int, count: int, secret: str) -> Path:
    path.write_bytes(b"\n".join(alert_body(n, secret) for n in range(first, first + count)))
    return path


def warm_up(port: int, secret: str) -> dict[str, int]:
    """POST `WARMUP` alerts one by one (bars before the measured ones); their statuses."""
    statuses: dict[str, int] = {}
    for n in range(WARMUP):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhook",
            data=alert_body(n, secret),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return statuses


def server_env(data_dir: Path, secret: str) -> dict[str, str]:
    """TANDEM_* for both servers: a rate limit that never refuses the bench's alerts."""
    return {
        "TANDEM_DATA_DIR": str(data_dir),
        "TANDEM_WEBHOOK_SECRET": secret,
        "TANDEM_WEBHOOK_RATE_PER_MIN": "1e12",
        "TANDEM_WEBHOOK_BURST": str(10**9),
    }


def signal_statuses(db: Path) -> dict[str, int]:
    """Signals by status in a DuckDB file whose server has stopped."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM signals GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in sorted(rows)}


def the_database(data_dir: Path) -> Path:
    """The one DuckDB file under `data_dir` (`tandem run` without `--live` keeps a replay's
    data in a directory of its own below it); else exit with the server's last lines."""
    found = sorted(data_dir.rglob("tandem.duckdb"))
    if len(found) == 1:
        return found[0]
    tail = data_dir.with_suffix(".log").read_text(errors="replace").splitlines()[-30:]
    sys.exit(
        f"webhook bench: {len(found)} databases under {data_dir}; server log:\n" + "\n".join(tail)
    )


def run_server(
    cmd: list[str], env: dict[str, str], port: int, ready: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Load `/livez`, warm up, then load `/webhook` with distinct alerts; after the server
    stops, count the signals it committed."""
    secret = env["TANDEM_WEBHOOK_SECRET"]
    data_dir = Path(env["TANDEM_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    bodies = write_bodies(data_dir.with_suffix(".bodies"), WARMUP, args.alerts, secret)
    load = {"seconds": args.seconds, "connections": args.connections}
    with running(cmd, env, port, ready, log=data_dir.with_suffix(".log")):
        noop = measure(port, "/livez", **load)  # first: before Engine 1 has work queued
        warm = warm_up(port, secret)
        hook = measure(port, "/webhook", bodies=bodies, **load)
    accepted = warm.get("201", 0) + hook["statuses"].get("201", 0)
    db = the_database(data_dir)
    statuses = signal_statuses(db)
    return {
        "webhook": hook,
        "noop": noop,
        "warmup": warm,
        "accepted": accepted,
        "in_db": sum(statuses.values()),
        "by_status": statuses,
    }


def plain(tmp: Path, args: argparse.Namespace, secret: str) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, **server_env(tmp / "plain", secret)}
    cmd = [sys.executable, __file__, "--serve-baseline", str(port)]
    return run_server(cmd, env, port, "/livez", args)


def tandem(tmp: Path, args: argparse.Namespace, secret: str) -> dict[str, Any]:
    port = free_port()
    cmd, env = tandem_run(port, tmp / "tandem", ingress="direct")
    env.update(server_env(tmp / "tandem", secret))
    return run_server(cmd, env, port, "/health", args)


def durable_check(name: str, result: dict[str, Any]) -> None:
    """Every 201 is a signal in the file, and no more; else exit loudly."""
    if result["accepted"] == result["in_db"]:
        return
    errors = result["webhook"]["errors"]
    sys.exit(
        f"webhook bench: DURABILITY CHECK FAILED for {name}: {result['accepted']} answered "
        f"201 but {result['in_db']} signals in its DuckDB file ({errors} connection errors)"
    )


def line(name: str, r: dict[str, Any], expected: str) -> str:
    others = {k: v for k, v in r["statuses"].items() if k != expected}
    extra = f"  other statuses {others}" if others else ""
    extra += f"  errors {r['errors']}" if r["errors"] else ""
    extra += "  (ran out of distinct alerts)" if r["exhausted"] else ""
    return (
        f"{name:26} {r['per_s']:7}/s  p50 {r['p50_ms']:7} ms  p99 {r['p99_ms']:7} ms"
        f"  generator cpu {r['loadgen_cpu_pct']:3}%{extra}"
    )


def accepted_per_s(r: dict[str, Any]) -> float:
    """201s per second (the generator's rate counts every answer)."""
    total = sum(r["statuses"].values())
    return r["per_s"] * r["statuses"].get("201", 0) / total if total else 0.0


def report(ours: dict[str, Any], base: dict[str, Any]) -> None:
    """The four measurements, the durability check (exits if it fails) and the goal."""
    rows = [
        ("tandem POST /webhook", ours["webhook"], "201"),
        ("tandem GET /livez (no-op)", ours["noop"], "200"),
        ("plain POST /webhook", base["webhook"], "201"),
        ("plain GET /livez (no-op)", base["noop"], "200"),
    ]
    for name, r, expected in rows:
        print(line(name, r, expected))
    durable_check("tandem", ours)
    durable_check("plain", base)
    print(
        f"durability: tandem {ours['accepted']} x 201 = {ours['in_db']} signals in DuckDB; "
        f"plain {base['accepted']} x 201 = {base['in_db']} signals"
    )
    print(f"tandem signals by status when it stopped (Engine 1's progress): {ours['by_status']}")
    print(
        f"goal >= {GOAL_PER_S} accepted/s with p99 < {GOAL_P99_MS} ms: "
        f"{'met' if goal_met(ours) else 'NOT met'}"
    )


def goal_met(ours: dict[str, Any]) -> bool:
    hook = ours["webhook"]
    return accepted_per_s(hook) >= GOAL_PER_S and hook["p99_ms"] < GOAL_P99_MS


def summary(ours: dict[str, Any], base: dict[str, Any], args: argparse.Namespace) -> str:
    """The last line: one JSON object."""
    hook = ours["webhook"]
    rate, plain_rate = accepted_per_s(hook), accepted_per_s(base["webhook"])
    return json.dumps(
        {
            "bench": "webhook",
            "accepted_per_s": round(rate),
            "p50_ms": hook["p50_ms"],
            "p99_ms": hook["p99_ms"],
            "other_statuses": {k: v for k, v in hook["statuses"].items() if k != "201"},
            "noop_serve_per_s": ours["noop"]["per_s"],
            "plain_uvicorn_durable_per_s": round(plain_rate),
            "plain_uvicorn_durable_p99_ms": base["webhook"]["p99_ms"],
            "plain_uvicorn_noop_per_s": base["noop"]["per_s"],
            "ratio_vs_plain": round(rate / max(plain_rate, 1), 3),
            "ratio_vs_noop": round(rate / max(ours["noop"]["per_s"], 1), 3),
            "durable_check": "ok",  # durable_check exits otherwise
            "tandem_signals_by_status": ours["by_status"],
            "goal_accepted_per_s": GOAL_PER_S,
            "goal_p99_ms": GOAL_P99_MS,
            "goal_met": goal_met(ours),
            "connections": args.connections,
            "seconds": args.seconds,
            "loadavg_before": args.loadavg,
            "smoke": args.smoke,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--alerts", type=int, default=100_000, help="distinct alerts per run")
    args = parser.parse_args()
    if args.serve_baseline:
        serve(durable_webhook_app(load_settings()), args.serve_baseline)
        return
    if args.smoke:
        args.seconds, args.alerts = 1.0, 10_000
    args.loadavg = round(os.getloadavg()[0], 2)
    secret = os.environ.get("TANDEM_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
    with tempfile.TemporaryDirectory() as tmp:
        base = plain(Path(tmp), args, secret)
        ours = tandem(Path(tmp), args, secret)
    report(ours, base)
    print(summary(ours, base, args))


if __name__ == "__main__":
    main()
