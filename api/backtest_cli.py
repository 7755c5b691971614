"""The `tandem backtest` command (registered in `api.cli`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from engine.backtest import Variant
from engine.clock import LiveClock
from engine.errors import Fatal, NotFound, Rejected
from engine.settings import load_settings


def backtest(  # noqa: PLR0917 - typer's options
    strategy: Annotated[
        str | None, typer.Option(help="a strategy from the registry (docs/strategies.md)")
    ] = None,
    alerts: Annotated[
        Path | None, typer.Option(help="a JSON file of TradingView alerts (data/alerts/)")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated; default: the scenario's symbols")
    ] = None,
    start: Annotated[str | None, typer.Option(help="first session, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="last session, YYYY-MM-DD")] = None,
    scenario: Annotated[
        str | None, typer.Option(help="default range and symbols (TANDEM_SCENARIO)")
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="option or equity (TANDEM_INSTRUMENT_MODE)")
    ] = None,
    variant: Annotated[str, typer.Option(help="A, B or both")] = "A",
    grid: Annotated[Path | None, typer.Option(help="a JSON parameter grid file")] = None,
    shard_sessions: Annotated[
        int | None, typer.Option(help="sessions per shard (default: the whole range)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="market data directory (default: the bundled data)")
    ] = None,
    database: Annotated[
        Path | None, typer.Option(help="take risk limits and exit rules from this database")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="an existing Ray cluster (ray://… or host:port)")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="name of the run directory")] = None,
    split_pct: Annotated[
        float, typer.Option(help="variant B: % of entries routed to B, as the live router")
    ] = 100.0,
    experiment: Annotated[
        str | None, typer.Option(help="variant B: the experiment id the split hashes with")
    ] = None,
    exit_rules: Annotated[
        bool, typer.Option(help="the database's exit rules (--no-exit-rules: alerts only)")
    ] = True,
) -> None:
    """Backtest a strategy or a file of alerts on historical bars, sharded over Ray.

    Results land in <data dir>/backtests/RUN_ID; `tandem report RUN_ID` writes the HTML."""
    from tqdm import tqdm

    from api.backtest import BacktestRequest, load_grid, parse_day, run_backtest
    from engine.scenarios import get_scenario

    try:
        settings = load_settings()
        found = get_scenario(scenario or settings.scenario)
        chosen_mode = mode or settings.instrument_mode
        if chosen_mode not in ("option", "equity"):
            raise Rejected("invalid_mode", f"--mode is option or equity, got {chosen_mode!r}")
        choices: dict[str, tuple[Variant, ...]] = {"A": ("A",), "B": ("B",), "both": ("A", "B")}
        variants = choices.get(variant, ())
        if not variants:
            raise Rejected("invalid_variant", f"--variant is A, B or both, got {variant!r}")
        if strategy is None and alerts is None and scenario is None:
            from engine.adapters.replay import bundled_data_dir

            alerts = bundled_data_dir() / "alerts" / f"{found.name}.ema-cross-5m.json"
        request = BacktestRequest(
            symbols=tuple(s.strip().upper() for s in symbols.split(","))
            if symbols
            else (("SPY",) if found.name == "spy-2013-10" else found.symbols),
            start=parse_day(start) if start else found.start,
            end=parse_day(end) if end else found.end,
            instrument_mode=chosen_mode,
            variants=variants,
            alerts_file=alerts,
            strategy=strategy,
            grid=load_grid(grid),
            market_dir=data,
            shard_sessions=shard_sessions,
            database=database,
            split_pct=split_pct,
            experiment_id=experiment or settings.experiment_id,
            exit_rules=exit_rules,
        )
        if address is not None:
            os.environ.setdefault("RAY_ADDRESS", address)
        with tqdm(total=None, desc="shards", unit="shard") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            run_dir, rows = run_backtest(
                request, settings, LiveClock(), run_id=run_id, address=address, progress=progress
            )
    except (Rejected, NotFound, Fatal) as exc:
        typer.echo(f"tandem: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"run {run_dir.name}: {run_dir}")
    for row in rows:
        typer.echo(
            f"  variant {row['variant']} {row['params_id']}: {row['orders']} orders, "
            f"{row['trades']} round trips ({row['wins']} won), realised P&L "
            f"{row['realised_pnl']:.2f}, open {row['unrealised_pnl']:.2f}"
        )
    typer.echo(f"report: tandem report {run_dir.name}")
