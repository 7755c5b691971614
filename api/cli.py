"""The `tandem` command: run the system, manage the database schema.

This is the composition root of the live runtime: it reads the settings, starts Ray, the
actors and the Serve app, and stops them in order.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.clock import LiveClock
from engine.errors import Fatal, Rejected
from engine.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Tandem trading engines.")
migrate_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
app.add_typer(migrate_app, name="migrate")


def _register_backtest() -> None:
    from api.backtest_cli import backtest

    app.command("backtest")(backtest)


_register_backtest()

log = logging.getLogger("tandem")


def main() -> None:
    try:
        app()
    except (Fatal, Rejected) as exc:
        typer.echo(f"tandem: {exc}", err=True)
        sys.exit(2)


def _settings() -> Settings:
    try:
        return load_settings()
    except Fatal as exc:
        typer.echo(f"tandem: configuration error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise Fatal(
                f"port {port} on {host} is in use", "stop what listens there or set TANDEM_PORT"
            ) from None


@app.command()
def run(  # noqa: PLR0917 - typer options
    port: Annotated[int | None, typer.Option(help="HTTP port (TANDEM_PORT)")] = None,
    live: Annotated[
        bool, typer.Option(help="wall clock and vendor market data; wait for real alerts")
    ] = False,
    replay: Annotated[bool, typer.Option(help="replay the bundled alerts at start")] = True,
    exit_after_replay: Annotated[
        bool, typer.Option(help="stop once the replay and its summary are done")
    ] = False,
    exit_after_start: Annotated[bool, typer.Option(help="start, then stop at once")] = False,
    strategy: Annotated[
        str | None,
        typer.Option(help="a registry strategy sends the alerts (docs/strategies.md)"),
    ] = None,
    params: Annotated[
        str | None, typer.Option(help="the strategy's parameters as a JSON object")
    ] = None,
    symbols: Annotated[str, typer.Option(help="the strategy's symbols, comma-separated")] = "SPY",
) -> None:
    """Start local Ray, the actors and the API on Ray Serve. By default replay the bundled
    scenario's alerts on a simulated clock and print a summary; then serve until Ctrl-C.
    With --strategy, that strategy sends the alerts instead (in the replay and live)."""
    if port is not None:
        os.environ["TANDEM_PORT"] = str(port)
    settings = _settings()
    if live:
        _require_live_keys(settings)
    else:
        # A replay starts from nothing each time, in a directory of its own under the
        # data directory, so its summary and its orders are those of this replay alone.
        replay_dir = settings.data_dir / f"replay-{settings.scenario}"
        shutil.rmtree(replay_dir, ignore_errors=True)
        os.environ["TANDEM_DATA_DIR"] = str(replay_dir)
        os.environ["TANDEM_CLOCK"] = "sim"
        os.environ["TANDEM_SIM_START"] = _scenario_start(settings.scenario).isoformat()
        # The replay shows both engines: variant B per signal, with the demo threshold of
        # the meta-decision unless one is set (README, "The replay").
        os.environ["TANDEM_EXPERIMENT_UNIT"] = "signal"
        os.environ.setdefault("TANDEM_META_THRESHOLD", str(REPLAY_META_THRESHOLD))
        settings = _settings()
    chosen = _strategy_choice(strategy, params, symbols)
    _configure_logging(settings)
    _check_port_free(settings.host, settings.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runtime = _start(settings, chosen)
    runtime["settings"] = settings
    try:
        _announce(settings)
        if replay and not live and not exit_after_start:
            _replay(settings, runtime, stop)
        if not (exit_after_start or exit_after_replay):
            while not stop.wait(0.5):
                pass
        typer.echo("tandem: stopping …")
    finally:
        _stop(runtime)
    typer.echo("tandem: stopped cleanly")


def _strategy_choice(
    name: str | None, params: str | None, symbols: str
) -> tuple[str, dict[str, object], tuple[str, ...]] | None:
    """The strategy `tandem run` trades with, its parameters checked before anything starts."""
    if name is None:
        return None
    import json

    from engine.strategies.registry import default_registry

    try:
        values = json.loads(params) if params else {}
    except json.JSONDecodeError as exc:
        raise Rejected("invalid_parameters", f"--params is not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise Rejected("invalid_parameters", "--params must be a JSON object")
    checked = default_registry().get(name).validate(values)
    return name, checked, tuple(s.strip().upper() for s in symbols.split(",") if s.strip())


def _drain(settings: Settings, store: Any) -> None:
    """New webhooks get 503; in-flight work finishes (up to 30 s); then the stop goes on."""
    import asyncio

    import httpx

    from api.replay_driver import wait_idle
    from engine.tokens import Role, issue_token

    secret = settings.jwt_secret.get_secret_value()
    token = issue_token(secret, "tandem-cli", Role.ADMIN, LiveClock().now())
    url = f"http://{settings.host}:{settings.port}/drain"
    try:
        httpx.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    except httpx.HTTPError as exc:
        log.warning("could not ask the API to drain: %s", exc)
    if asyncio.run(wait_idle(store, 30.0)) is None:
        log.warning("work still in flight after 30 s; it resumes at the next start")


def _require_live_keys(settings: Settings) -> None:
    missing = [
        name
        for name, value in (
            ("TANDEM_ALPACA_KEY_ID", settings.alpaca_key_id),
            ("TANDEM_ALPACA_SECRET_KEY", settings.alpaca_secret_key),
        )
        if value is None
    ]
    if missing:
        raise Fatal(
            f"--live needs market data from a vendor: set {' and '.join(missing)}",
            "the bundled data ends years before today; without --live Tandem replays it",
        )


def _scenario_start(name: str) -> Any:
    from engine.calendar import xnys_calendar
    from engine.scenarios import get_scenario

    return xnys_calendar().session_open(get_scenario(name).sessions[0])


def _market_data_spec(settings: Settings) -> Any:
    from actors.marketdata import ReplayProviders, VendorProviders

    if settings.clock == "sim" or settings.alpaca_key_id is None:
        return ReplayProviders(settings.scenario)
    assert settings.alpaca_secret_key is not None
    td = settings.twelvedata_api_key
    return VendorProviders(
        alpaca_key_id=settings.alpaca_key_id.get_secret_value(),
        alpaca_secret_key=settings.alpaca_secret_key.get_secret_value(),
        twelvedata_api_key=None if td is None else td.get_secret_value(),
    )


def _replay(settings: Settings, runtime: dict[str, Any], stop: threading.Event) -> None:
    import asyncio

    from rich.console import Console
    from rich.progress import Progress

    from api.replay_driver import ReplayDriver, ab_summary, load_alerts, summary
    from engine.adapters.replay import ReplayMarketData, bundled_data_dir

    timeline = ReplayMarketData(settings.scenario).timeline()
    sources = [runtime["strategy"]] if "strategy" in runtime else []
    alerts_file = bundled_data_dir() / "alerts" / f"{settings.scenario}.ema-cross-5m.json"
    alerts = [] if sources else load_alerts(alerts_file)
    console = Console(stderr=True)
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(f"replaying {settings.scenario}", total=len(timeline))
        asyncio.run(_variant_b_on(runtime["store"], runtime["flags"], runtime["clock"]))
        driver = ReplayDriver(
            f"http://{settings.host}:{settings.port}",
            settings.webhook_secret.get_secret_value(),
            runtime["store"],
            runtime["clock"],
            [runtime["monitor"], runtime["shadow"]],
            progress=lambda done, _total: progress.update(task, completed=done),
            stop=stop.is_set,
            routed=True,
            sources=sources,
        )
        report = asyncio.run(driver.run(timeline, alerts))
    figures, rejected = asyncio.run(summary(runtime["store"]))
    ab = asyncio.run(ab_summary(runtime["store"], settings.experiment_id))
    _print_summary(console, settings, report, {**figures, **ab}, rejected)
    if report.posted and not stop.is_set() and not ab["B shadow trades"]:
        raise Fatal(
            "variant B produced no shadow trade in the replay",
            "check the flags and TANDEM_META_THRESHOLD (README, 'The replay')",
        )


REPLAY_META_THRESHOLD = 30.0
REPLAY_SPLIT_PCT = 50
REPLAY_FLAGS = ("enable_variant_b", "enable_orb", "enable_strat", "enable_ttm", "enable_satyland")


async def _variant_b_on(store: Any, flags: Any, clock: Any) -> None:
    """The replay turns variant B on, with every specialist, for half of the signals:
    through the audited admin path, as an admin would."""
    at = await clock.now.remote()
    await store.update_settings.remote(
        "feature_flags", {name: {"enabled": True} for name in REPLAY_FLAGS}, "tandem-replay", at
    )
    await store.update_settings.remote(
        "experiment_settings", {"split_pct": {"value": REPLAY_SPLIT_PCT}}, "tandem-replay", at
    )
    await flags.refresh.remote()


def _print_summary(
    console: Any, settings: Settings, report: Any, figures: Any, rejected: Any
) -> None:
    from rich.table import Table

    table = Table(title=f"replay of {settings.scenario}: {report.posted} alerts posted")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, str(value))
    for reason, n in rejected.items():
        table.add_row(f"rejected: {reason}", str(n))
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    table.add_row("webhook answers", statuses or "none")
    table.add_row("replay time", f"{report.seconds:.1f} s for {report.minutes} minutes")
    console.print(table)


def _start(
    settings: Settings, strategy: tuple[str, dict[str, object], tuple[str, ...]] | None = None
) -> dict[str, Any]:
    import ray

    from actors.system import (
        NAMESPACE,
        start_clock,
        start_engine_one,
        start_engine_two,
        start_marketdata,
        start_monitor,
        start_store,
        start_strategy_runner,
    )
    from api.serve_app import deploy, direct_ingress_env, tandem_environ

    env_vars = direct_ingress_env(settings.port) if settings.ingress == "direct" else {}
    os.environ.update(env_vars)  # the local cluster's processes inherit the driver's env
    started = time.monotonic()
    ray.init(
        address=settings.ray_address,
        num_cpus=settings.num_cpus,
        namespace=NAMESPACE,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=settings.dashboard_port,
        runtime_env={"env_vars": {**env_vars, **tandem_environ()}},
        log_to_driver=settings.log_level == "DEBUG",
    )
    store = start_store(settings)
    clock = start_clock(settings)
    marketdata = start_marketdata(_market_data_spec(settings), store=store)
    workers = start_engine_one(settings, store, marketdata, clock)
    # The front door opens as soon as Engine 1 can take alerts; Engine 2's dozen actors
    # start behind it. Signals decided meanwhile are routed by the router's first sweep.
    deploy(settings.host, settings.port, settings.ingress, tandem_environ())
    log.info("API up in %.1f s; starting Engine 2", time.monotonic() - started)
    engine_two = start_engine_two(settings, store, marketdata, clock)
    ray.get(workers["processor"].set_router.remote(engine_two["router"]), timeout=60)
    workers = {**workers, "router": engine_two["router"], "shadow": engine_two["shadow"]}
    now = ray.get(clock.now.remote(), timeout=60)
    swept = ray.get(
        [
            workers["processor"].tick.remote(now),
            workers["order_creator"].tick.remote(now),
            workers["router"].tick.remote(now),
        ],
        timeout=120,
    )
    log.info("resumed pending work left by the last run: %s", swept)
    if strategy is not None:
        name, values, symbols = strategy
        workers["strategy"] = start_strategy_runner(
            settings, marketdata, name, values, symbols, _first_session(settings, now)
        )
    monitors = start_monitor(settings, store, marketdata, workers, clock)
    log.info("tandem started in %.1f s", time.monotonic() - started)
    return {
        "store": store,
        "clock": clock,
        "marketdata": marketdata,
        "flags": engine_two["flags"],
        "analytics": engine_two["analytics"],  # held here: nothing else holds its handle
        **workers,
        **monitors,
    }


STRATEGY_WARM_UP_SESSIONS = 5


def _first_session(settings: Settings, now: Any) -> Any:
    """Where a strategy's history starts: the replay's first session, or live, the session
    `STRATEGY_WARM_UP_SESSIONS` before today (its indicators warm up on those bars)."""
    from datetime import timedelta

    from engine.calendar import xnys_calendar
    from engine.scenarios import get_scenario

    if settings.clock == "sim":
        return get_scenario(settings.scenario).start
    calendar = xnys_calendar()
    today = calendar.session_date(now)
    return calendar.sessions_between(today - timedelta(days=14), today)[
        -STRATEGY_WARM_UP_SESSIONS - 1
    ]


def _stop(runtime: dict[str, Any]) -> None:
    import ray
    from ray import serve

    from actors.system import stop_store

    try:
        if "settings" in runtime:
            _drain(runtime["settings"], runtime["store"])
        if "ticker" in runtime:
            ray.get(runtime["ticker"].stop.remote(), timeout=30)
        serve.shutdown()  # type: ignore[no-untyped-call]
        if "store" in runtime:
            stop_store(runtime["store"])
    finally:
        ray.shutdown()


def _announce(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    ray_bin = Path(sys.executable).parent / "ray"
    typer.echo(
        f"""
tandem is running ({settings.ingress} ingress)
  API docs      {base}/docs
  health        {base}/health
  data          {settings.data_dir.resolve()}
  Ray dashboard http://127.0.0.1:{settings.dashboard_port}
                Ray's token authentication is on: the dashboard asks for a token.
                Print it with `{ray_bin} get-auth-token` and paste it there.
Press Ctrl-C to stop.
"""
    )


@app.command()
def token(
    role: Annotated[str, typer.Option(help="viewer | trader | admin")] = "viewer",
    subject: Annotated[str, typer.Option(help="who the token is for")] = "cli",
    hours: Annotated[float, typer.Option(help="validity in hours")] = 24.0,
) -> None:
    """Print an API token (HS256 JWT signed with TANDEM_JWT_SECRET)."""
    from datetime import timedelta

    from engine.tokens import Role, issue_token

    try:
        wanted = Role(role)
    except ValueError:
        raise Rejected("invalid_role", f"{role!r}: use viewer, trader or admin") from None
    secret = _settings().jwt_secret.get_secret_value()
    ttl = timedelta(hours=hours)
    typer.echo(issue_token(secret, subject, wanted, LiveClock().now(), ttl=ttl))


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="the backtest run's id")],
    data_dir: Annotated[
        Path | None, typer.Option(help="the data directory (TANDEM_DATA_DIR)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="the HTML file (default: in the run)")] = None,
) -> None:
    """Print a backtest run's metrics and write its self-contained HTML report."""
    from api.report import report_run

    run_dir = (data_dir if data_dir is not None else _settings().data_dir) / "backtests" / run_id
    if not (run_dir / "run.json").is_file():
        typer.echo(f"tandem: no backtest run {run_id!r} (looked in {run_dir})", err=True)
        raise typer.Exit(2)
    path, summary = report_run(run_dir, out)
    typer.echo(summary)
    typer.echo(f"report: {path}")


def _open_db(settings: Settings) -> Any:
    from storage.store import open_database

    return open_database(settings.db_path)


@migrate_app.command("status")
def migrate_status() -> None:
    """List migrations, applied or pending, with checksum state."""
    from storage.migrate import Migrator

    conn = _open_db(_settings())
    for s in Migrator(conn, LiveClock(), None).status():
        state = "pending" if s.applied_at is None else f"applied {s.applied_at.isoformat()}"
        if s.checksum_ok is False:
            state += "  CHANGED SINCE APPLIED"
        typer.echo(f"{s.version:04d}_{s.name:<32} {state}")


@migrate_app.command("up")
def migrate_up(target: Annotated[int | None, typer.Argument()] = None) -> None:
    """Apply pending migrations (up to TARGET)."""
    from storage.migrate import Migrator

    conn = _open_db(_settings())
    done = Migrator(conn, LiveClock(), None).up(target)
    typer.echo(f"applied: {done or 'nothing to do'}")


@migrate_app.command("down")
def migrate_down(target: Annotated[int, typer.Argument()]) -> None:
    """Revert applied migrations above TARGET (0 reverts all)."""
    from storage.migrate import Migrator

    conn = _open_db(_settings())
    done = Migrator(conn, LiveClock(), None).down(target)
    typer.echo(f"reverted: {done or 'nothing to do'}")


if __name__ == "__main__":
    main()


@app.command("replay")
def replay_experiment(
    experiment: Annotated[str, typer.Option(help="the experiment id (TANDEM_EXPERIMENT_ID)")],
    data_dir: Annotated[
        Path | None, typer.Option(help="the run's data directory (TANDEM_DATA_DIR)")
    ] = None,
) -> None:
    """Check the event log's hash chain, then recompute every Engine 2 decision of an
    experiment from the log and its enrichment snapshots; exit 1 on any difference."""
    import duckdb

    from api.experiment_replay import check_signal, engine_two_log
    from engine.agents.panel import panel
    from engine.hashchain import verify
    from storage.eventlog import events_sql

    if data_dir is not None:
        os.environ["TANDEM_DATA_DIR"] = str(data_dir)
    settings = _settings()
    if not any(settings.events_dir.glob("*.parquet")):
        raise Fatal(f"no landed events under {settings.events_dir}", "run Tandem first")
    sql = events_sql(str(settings.events_dir / "*.parquet"))
    with duckdb.connect() as conn:
        relation = conn.sql(f"SELECT * FROM ({sql}) ORDER BY seq")
        assert relation is not None
        rows = relation.to_arrow_table().to_pylist()
    chain = verify(rows)
    state = "intact" if chain.ok else f"BROKEN at seq {chain.first_bad_seq}: {chain.problem}"
    typer.echo(f"event log: {len(rows)} events, hash chain {state}")
    agents = panel()
    outcomes = {
        key: check_signal(slot, settings.snapshots_dir, agents)
        for key, slot in sorted(engine_two_log(rows, experiment).items())
    }
    for key, problem in outcomes.items():
        if problem is not None:
            typer.echo(f"{key}: {problem}")
    differ = sum(1 for p in outcomes.values() if p is not None)
    identical = len(outcomes) - differ
    typer.echo(f"experiment {experiment}: {identical} decisions identical, {differ} different")
    if differ or not chain.ok or identical == 0:
        raise typer.Exit(1)
