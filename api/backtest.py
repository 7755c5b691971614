"""`tandem backtest`: split a backtest into shards, run them as Ray tasks, summarise.

A shard is one symbol × one range of sessions × one parameter set × one variant
(`actors.backtest.ShardSpec`). Shards run as Ray tasks (on this machine's local Ray, or
on a cluster with `--address`); each writes its Parquet, and the summary is a DuckDB
query over them (`storage.backtests.summary`). Ctrl-C cancels the shards still running
and leaves the finished ones (run.json says which). On a Ray it did not start itself
(`--address`, or a driver that is already connected) at most one CPU fewer than the
cluster has runs at once, and every task runs at a lower priority, so a live Tandem on
the same cluster keeps its CPU.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from actors.backtest import ShardSpec
from engine.adapters.replay import MINUTE_FILE, bundled_data_dir
from engine.agents.panel import panel
from engine.backtest import BacktestConfig, Variant
from engine.calendar import NEW_YORK, xnys_calendar
from engine.clock import Clock
from engine.errors import Rejected
from engine.exits import ExitRules
from engine.flags import AGENT_FLAGS, ENABLE_VARIANT_B
from engine.meta import MetaConfig
from engine.orders import PlanConfig
from engine.protections import create_default_protections
from engine.risk import RiskLimits
from engine.scenarios import SCENARIOS
from engine.settings import Settings
from storage.backtests import default_tables, summary, tables_of, write_manifest

SHARD_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class BacktestRequest:
    """What the user asked for (the CLI's options, resolved)."""

    symbols: tuple[str, ...]
    start: date
    end: date
    instrument_mode: str
    variants: tuple[Variant, ...]
    alerts_file: Path | None = None
    strategy: str | None = None
    grid: tuple[Mapping[str, Any], ...] = ({},)
    market_dir: Path | None = None
    shard_sessions: int | None = None
    rate: float | None = None
    database: Path | None = None
    split_pct: float = 100.0  # variant B: the share of entries the router sends to B
    experiment_id: str = "backtest"
    exit_rules: bool = True  # False: every exit rule off (exits come from the alerts only)


def load_grid(path: Path | None) -> tuple[Mapping[str, Any], ...]:
    """A parameter grid file (JSON): `{"fast": [5, 8], "slow": [21, 34]}` (every
    combination) or `[{"fast": 5, "slow": 21}, ...]` (these sets)."""
    if path is None:
        return ({},)
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise Rejected("invalid_grid", f"{path}: {exc}") from None
    if isinstance(loaded, list) and all(isinstance(x, dict) for x in loaded) and loaded:
        return tuple(loaded)
    if isinstance(loaded, dict) and loaded:
        names = sorted(loaded)
        values = [v if isinstance(v, list) else [v] for v in (loaded[n] for n in names)]
        return tuple(dict(zip(names, combo, strict=True)) for combo in itertools.product(*values))
    raise Rejected("invalid_grid", f"{path}: a non-empty object of lists or list of objects")


def sessions_with_bars(market_dir: Path, symbol: str, start: date, end: date) -> list[date]:
    """The XNYS sessions in [start, end] on which the data has minute bars of `symbol`."""
    days = (
        pl.scan_parquet(market_dir / MINUTE_FILE)
        .filter(pl.col("symbol") == symbol)
        .select(pl.col("ts").dt.convert_time_zone(str(NEW_YORK)).dt.date().unique())
        .collect()
        .to_series()
        .to_list()
    )
    sessions = set(xnys_calendar().sessions_between(start, end))
    return sorted(d for d in days if d in sessions)


def backtest_config(
    settings: Settings, mode: str, variant: Variant, clock: Clock, database: Path | None
) -> BacktestConfig:
    """The live settings a new install trades with: risk limits and exit rules from a
    fresh database's migrations (or `database`), protections and planning from settings."""
    limits, rules = default_tables(clock) if database is None else tables_of(database)
    return BacktestConfig(
        plan=PlanConfig(
            instrument_mode="equity" if mode == "equity" else "option",
            target_dte=settings.target_dte,
            opposite_entry=settings.opposite_entry,
        ),
        limits=RiskLimits.from_rows(limits),
        exit_rules=ExitRules.from_rows(rules),
        protections=create_default_protections(settings),
        slippage_ticks=settings.slippage_ticks,
        dedupe_window_s=settings.dedupe_window_s,
        variant=variant,
        meta=MetaConfig(threshold=settings.meta_threshold),
        agents=tuple(panel()) if variant == "B" else (),
        agent_flags={flag: True for flag in (ENABLE_VARIANT_B, *AGENT_FLAGS.values())},
    )


def plan_shards(
    request: BacktestRequest, settings: Settings, run_dir: Path, clock: Clock
) -> tuple[list[ShardSpec], list[dict[str, Any]]]:
    """Every shard of the request, and the grid as run.json records it."""
    market_dir = request.market_dir or bundled_data_dir()
    grid: list[dict[str, Any]] = [
        {"params_id": f"p{i}", "params": dict(p)} for i, p in enumerate(request.grid)
    ]
    configs = {
        v: replace(
            backtest_config(settings, request.instrument_mode, v, clock, request.database),
            split_pct=request.split_pct,
            experiment_id=request.experiment_id,
            unit=settings.experiment_unit,
        )
        for v in request.variants
    }
    if not request.exit_rules:
        configs = {v: replace(c, exit_rules=ExitRules()) for v, c in configs.items()}
    specs: list[ShardSpec] = []
    for symbol in request.symbols:
        sessions = sessions_with_bars(market_dir, symbol, request.start, request.end)
        if not sessions:
            raise Rejected(
                "no_data", f"no {symbol} minute bars between {request.start} and {request.end}"
            )
        scenario = _scenario_for(sessions[0])
        rate = request.rate if request.rate is not None else (scenario.rate if scenario else 0.02)
        recorded = bool(scenario and scenario.recorded_chain and symbol in scenario.symbols)
        size = request.shard_sessions or len(sessions)
        chunks = [tuple(sessions[i : i + size]) for i in range(0, len(sessions), size)]
        for chunk, g, variant in itertools.product(chunks, grid, request.variants):
            config = configs[variant]
            if variant == "B":
                config = replace(config, first_session=chunk[0])
            shard_id = f"{symbol}-{chunk[0]:%Y%m%d}-{g['params_id']}-{variant}"
            specs.append(
                ShardSpec(
                    run_dir=str(run_dir),
                    shard_id=shard_id,
                    symbol=symbol,
                    sessions=chunk,
                    params_id=str(g["params_id"]),
                    config=config,
                    market_dir=str(market_dir),
                    rate=rate,
                    recorded_chain=recorded,
                    alerts_file=None if request.alerts_file is None else str(request.alerts_file),
                    strategy=request.strategy,
                    params=g["params"],
                )
            )
    return specs, grid


def _scenario_for(day: date) -> Any:
    for scenario in SCENARIOS.values():
        if day in scenario.sessions:
            return scenario
    return None


def new_run_id(request: BacktestRequest, now: datetime) -> str:
    digest = hashlib.sha256(repr(request).encode()).hexdigest()[:6]
    return f"{now:%Y%m%d-%H%M%S}-{digest}"


def run_backtest(
    request: BacktestRequest,
    settings: Settings,
    clock: Clock,
    *,
    run_id: str | None = None,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Run every shard on Ray; the run directory and its summary rows."""
    import ray

    from actors.system import NAMESPACE, RemoteShard

    if request.strategy is None and request.alerts_file is None:
        raise Rejected("no_signal_source", "give --alerts FILE or --strategy NAME")
    if request.strategy is not None:
        from engine.strategies.registry import default_registry

        strategy = default_registry().get(request.strategy)
        for params in request.grid:
            strategy.validate(params)  # a bad grid fails before any shard starts
    now = clock.now()
    rid = run_id or new_run_id(request, now)
    run_dir = settings.data_dir / "backtests" / rid
    specs, grid = plan_shards(request, settings, run_dir, clock)
    manifest: dict[str, Any] = {
        "run_id": rid,
        "created_at": now.isoformat(),
        "symbols": list(request.symbols),
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "source": {
            "kind": "strategy" if request.strategy else "alerts",
            "name": request.strategy,
            "path": None if request.alerts_file is None else str(request.alerts_file),
        },
        "instrument_mode": request.instrument_mode,
        "variants": list(request.variants),
        "capital": specs[0].config.limits.capital_available if specs else 0.0,
        "grid": grid,
        "status": "running",
        "shards": [
            {
                "shard_id": s.shard_id,
                "symbol": s.symbol,
                "start": s.sessions[0].isoformat(),
                "end": s.sessions[-1].isoformat(),
                "params_id": s.params_id,
                "variant": s.config.variant,
                "status": "pending",
                "bars": 0,
                "seconds": 0.0,
            }
            for s in specs
        ],
    }
    write_manifest(run_dir, manifest)
    started_ray = not ray.is_initialized()
    if started_ray:
        if address is None:
            ray.init(
                num_cpus=settings.num_cpus,
                include_dashboard=False,
                namespace=NAMESPACE,
                log_to_driver=False,
                object_store_memory=200 * 1024 * 1024,
            )
        else:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        shared = address is not None or not started_ray  # a Ray others (Tandem) use too
        limit = max(1, cpus - 1) if shared else max(1, cpus)
        manifest["status"] = _dispatch(specs, manifest, run_dir, RemoteShard, limit, progress)
    finally:
        write_manifest(run_dir, manifest)
        if started_ray:
            ray.shutdown()
    return run_dir, summary(run_dir)


def _dispatch(  # noqa: PLR0917
    specs: Sequence[ShardSpec],
    manifest: dict[str, Any],
    run_dir: Path,
    task: Any,
    limit: int,
    progress: Callable[[int, int], None] | None,
) -> str:
    """Keep `limit` shards running until all are done; Ctrl-C cancels the rest."""
    import ray

    rows = {r["shard_id"]: r for r in manifest["shards"]}
    queue = list(specs)
    running: dict[Any, ShardSpec] = {}
    done = 0
    try:
        while queue or running:
            while queue and len(running) < limit:
                spec = queue.pop(0)
                running[task.remote(spec)] = spec
                rows[spec.shard_id]["status"] = "running"
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                spec = running.pop(ref)
                row = rows[spec.shard_id]
                try:
                    figures = ray.get(ref, timeout=SHARD_TIMEOUT_S)
                except Exception as exc:  # a failed shard is recorded; the others go on
                    row.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
                else:
                    row.update(status="done", **figures)
                done += 1
                write_manifest(run_dir, manifest)
                if progress is not None:
                    progress(done, len(specs))
    except KeyboardInterrupt:
        for ref, spec in running.items():
            ray.cancel(ref, force=True)
            rows[spec.shard_id]["status"] = "cancelled"
        for spec in queue:
            rows[spec.shard_id]["status"] = "cancelled"
        return "cancelled"
    failed = any(r["status"] == "failed" for r in rows.values())
    return "failed" if failed else "done"


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Rejected("invalid_date", f"{text!r} is not YYYY-MM-DD") from None
