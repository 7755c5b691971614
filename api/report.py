"""`tandem report RUN_ID`: a backtest run's metrics and one self-contained HTML report.

The report is a single file: its styles inline, its plots inline SVG, no script, nothing
fetched from anywhere. Sections: the run's settings, a metrics table per variant/params,
the equity curves, their drawdowns, the distribution of round-trip P&L, A against B, and
the metrics over the parameter grid. The figures are `engine.performance`'s over the
portfolios `api.report_data` builds from the run directory.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from api.report_data import Portfolio, RunData, load_run
from api.report_plots import (
    MAX_SERIES,
    Series,
    Sweep,
    histograms,
    line_chart,
    side_by_side,
    style,
    sweep_charts,
)
from engine.performance import Performance, drawdown_series

Number = float | int | None
MAX_IN_PANEL = 6  # series in a small panel: more cannot be told apart


def pct(value: Number) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def num(value: Number) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return str(value) if isinstance(value, int) else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Column:
    """One metric of the summary: its key, its heading, how to get and show it."""

    key: str
    heading: str
    get: Callable[[Performance], Number]
    show: Callable[[Number], str]


COLUMNS = (
    Column("total_return", "return", lambda p: p.total_return, pct),
    Column("sharpe", "Sharpe", lambda p: p.sharpe, num),
    Column("sortino", "Sortino", lambda p: p.sortino, num),
    Column(
        "max_drawdown",
        "max drawdown",
        lambda p: None if p.start_equity is None else p.drawdown.fraction,
        pct,
    ),
    Column("win_rate", "win rate", lambda p: p.trades.win_rate, pct),
    Column("profit_factor", "profit factor", lambda p: p.trades.profit_factor, num),
    Column("trades", "trades", lambda p: p.trades.trades, num),
    Column("expectancy", "expectancy", lambda p: p.trades.expectancy, num),
    Column("end_equity", "end equity", lambda p: p.end_equity, num),
)


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "—"


def summary_table(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics per variant/params, one row each (keys: variant, params_id, params and
    every `COLUMNS` key; None where a metric is undefined)."""
    return summary_rows(load_run(run_dir).portfolios)


def summary_rows(portfolios: Iterable[Portfolio]) -> list[dict[str, Any]]:
    return [
        {
            "variant": p.variant,
            "params_id": p.params_id,
            "params": p.params,
            **{c.key: c.get(p.performance) for c in COLUMNS},
        }
        for p in portfolios
    ]


def format_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as an aligned text table (for the terminal)."""
    headings = ["variant", "params", *(c.heading for c in COLUMNS)]
    lines = [
        [row["variant"], row["params_id"], *(c.show(row[c.key]) for c in COLUMNS)] for row in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(headings, *lines, strict=True)]
    return "\n".join(
        "  ".join(str(x).rjust(w) for x, w in zip(line, widths, strict=True))
        for line in [headings, *lines]
    )


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the run's HTML report (default `<run_dir>/report.html`); return its path."""
    return render(load_run(run_dir), run_dir, out)


def report_run(run_dir: Path, out: Path | None = None) -> tuple[Path, str]:
    """`tandem report`: the run read once, its report written; the path and the summary
    as text."""
    data = load_run(run_dir)
    return render(data, run_dir, out), format_summary(summary_rows(data.portfolios))


def render(data: RunData, run_dir: Path, out: Path | None = None) -> Path:
    target = out if out is not None else run_dir / "report.html"
    with style():
        body = "\n".join(section(data) for section in SECTIONS)
    title = f"Backtest {data.run.get('run_id', run_dir.name)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(PAGE.format(title=html.escape(str(title)), css=CSS, body=body), "utf-8")
    return target


# --- sections ---------------------------------------------------------------------------


def e(value: Any) -> str:
    return html.escape(str(value))


def _table(headings: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headings)
    body = "\n".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def _shard_counts(run: dict[str, Any]) -> str:
    shards = run.get("shards", [])
    counts: dict[str, int] = {}
    for shard in shards:
        counts[str(shard.get("status"))] = counts.get(str(shard.get("status")), 0) + 1
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "cancelled", "failed")]
    bars = sum(int(s.get("bars", 0)) for s in shards)
    seconds = sum(float(s.get("seconds", 0.0)) for s in shards)
    return f"{len(shards)}: {', '.join(parts)}; {bars} bars in {seconds:.1f} s"


def run_section(data: RunData) -> str:
    run = data.run
    source = run.get("source", {})
    source_text = " ".join(
        str(x) for x in (source.get("kind"), source.get("name"), source.get("path")) if x
    )
    rows = [
        ("run", run.get("run_id")),
        ("created", run.get("created_at")),
        ("status", run.get("status")),
        ("symbols", ", ".join(run.get("symbols", []))),
        ("dates", f"{run.get('start')} to {run.get('end')}"),
        ("source", source_text),
        ("instrument mode", run.get("instrument_mode")),
        ("variants", ", ".join(data.variants)),
        ("capital", num(float(run.get("capital", 0.0)))),
        ("parameter sets", len(run.get("grid", []))),
        ("shards", _shard_counts(run)),
    ]
    table = _table(["setting", "value"], ([f"<td>{k}</td>", f"<td>{e(v)}</td>"] for k, v in rows))
    title = e(f"Backtest {run.get('run_id')}")
    return f'<h1>{title}</h1>\n<h2 id="run">Run</h2>\n{table}'


def _metric_cell(column: Column, perf: Performance) -> str:
    value = column.get(perf)
    raw = "" if value is None else repr(value)
    return (
        f'<td class="num" data-metric="{column.key}" data-value="{raw}">{column.show(value)}</td>'
    )


def metrics_section(data: RunData) -> str:
    rows = [
        [
            f"<td>{e(p.variant)}</td>",
            f"<td>{e(p.params_id)}</td>",
            f"<td>{e(params_text(p.params))}</td>",
            *(_metric_cell(c, p.performance) for c in COLUMNS),
        ]
        for p in data.portfolios
    ]
    headings = ["variant", "params_id", "parameters", *(c.heading for c in COLUMNS)]
    table = _table(headings, rows, cls="metrics")
    return f'<h2 id="metrics">Metrics</h2>\n{table}\n{NOTES}'


def _total_return(p: Portfolio) -> float:
    value = p.performance.total_return
    return -math.inf if value is None else value


def _shown(
    drawn: Sequence[Portfolio], limit: int = MAX_SERIES, what: str = "Portfolios"
) -> tuple[list[Portfolio], str]:
    """At most `limit` portfolios, the best by total return, and a note if some are left
    out."""
    if len(drawn) <= limit:
        return list(drawn), ""
    keep = {id(p) for p in sorted(drawn, key=_total_return, reverse=True)[:limit]}
    note = f"<p>{e(what)}: {limit} of {len(drawn)} shown, the best by total return.</p>"
    return [p for p in drawn if id(p) in keep], note


def _slots(data: RunData, portfolios: Sequence[Portfolio]) -> dict[str, int]:
    """A colour slot per parameter set drawn, in grid order: A and B of a set match."""
    drawn = {p.params_id for p in portfolios}
    grid = [str(g["params_id"]) for g in data.run.get("grid", [])]
    return {params_id: i for i, params_id in enumerate(x for x in grid if x in drawn)}


def _series(data: RunData, portfolios: Sequence[Portfolio], drawdown: bool) -> list[Series]:
    slots = _slots(data, portfolios)
    return [
        Series(
            f"{p.label} ({params_text(p.params)})",
            p.times,
            list(-drawdown_series(p.equity)) if drawdown else p.equity,
            slot=slots.get(p.params_id, 0),
            dashed=p.variant != "A",
        )
        for p in portfolios
    ]


def equity_section(data: RunData) -> str:
    shown, note = _shown([p for p in data.portfolios if p.times])
    if not shown:
        return '<h2 id="equity">Equity</h2>\n<p>No equity was written.</p>'
    svg = line_chart(_series(data, shown, drawdown=False), "equity", "equity")
    return f'<h2 id="equity">Equity</h2>\n{note}<figure>{svg}</figure>'


def drawdown_section(data: RunData) -> str:
    shown, note = _shown([p for p in data.portfolios if p.times])
    if not shown:
        return '<h2 id="drawdown">Drawdown</h2>\n<p>No equity was written.</p>'
    svg = line_chart(_series(data, shown, drawdown=True), "drawdown", "drawdown", percent=True)
    return f'<h2 id="drawdown">Drawdown</h2>\n{note}<figure>{svg}</figure>'


def pnl_section(data: RunData) -> str:
    head = '<h2 id="pnl">Round-trip P&amp;L</h2>'
    shown: list[Portfolio] = []
    notes = []
    for variant in data.variants:
        traded = [p for p in data.of_variant(variant) if p.pnls]
        mine, note = _shown(traded, MAX_IN_PANEL, f"Variant {variant}")
        shown += mine
        notes.append(note)
    if not shown:
        return f"{head}\n<p>No round trip was closed.</p>"
    series = _series(data, shown, drawdown=False)
    trips = [replace(s, values=p.pnls) for s, p in zip(series, shown, strict=True)]
    panels = [
        (f"Variant {v}", [s for s, p in zip(trips, shown, strict=True) if p.variant == v])
        for v in data.variants
    ]
    return f"{head}\n{''.join(notes)}<figure>{histograms(panels, 'pnl')}</figure>"


def _ab_chosen(drawn: Sequence[Portfolio]) -> tuple[set[str], str]:
    """The parameter sets both panels show: the best by total return in either variant."""
    ranked = list(dict.fromkeys(p.params_id for p in sorted(drawn, key=_total_return)[::-1]))
    if len(ranked) <= MAX_IN_PANEL:
        return set(ranked), ""
    note = f"{MAX_IN_PANEL} of {len(ranked)} parameter sets shown: the best in either variant."
    return set(ranked[:MAX_IN_PANEL]), f"<p>{note}</p>"


def ab_section(data: RunData) -> str:
    head = '<h2 id="ab">A vs B</h2>'
    if not {"A", "B"} <= set(data.variants):
        return f"{head}\n<p>Variant B not run.</p>"
    drawn = [p for p in data.portfolios if p.times]
    chosen, note = _ab_chosen(drawn)
    panels = []
    for v in ("A", "B"):
        mine = [p for p in drawn if p.variant == v and p.params_id in chosen]
        panels.append((f"Variant {v}", _series(data, mine, drawdown=False)))
    svg = side_by_side(panels, "equity", "ab")
    return f"{head}\n{note}<figure>{svg}</figure>\n{_ab_table(data)}"


AB_COLUMNS = COLUMNS[:7]


def _ab_table(data: RunData) -> str:
    by_key = {(p.variant, p.params_id): p for p in data.portfolios}
    rows = []
    for params_id in (str(g["params_id"]) for g in data.run.get("grid", [])):
        a, b = by_key.get(("A", params_id)), by_key.get(("B", params_id))
        if a is not None and b is not None:
            cells = [_metric_cell(c, x.performance) for c in AB_COLUMNS for x in (a, b)]
            rows.append([f"<td>{e(params_id)}</td>", *cells])
    headings = ["params", *(f"{c.heading} {v}" for c in AB_COLUMNS for v in ("A", "B"))]
    return _table(headings, rows, cls="ab")


SWEEP_COLUMNS = (COLUMNS[0], COLUMNS[1])  # total return, Sharpe


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _varying(grid: Sequence[dict[str, Any]]) -> list[str]:
    """The parameter names whose value differs between the grid's sets, in grid order."""
    names = list(dict.fromkeys(k for g in grid for k in g.get("params", {})))
    return [k for k in names if len({_key(g.get("params", {}).get(k)) for g in grid}) > 1]


def _axis(grid: Sequence[dict[str, Any]], name: str) -> list[Any]:
    def order(v: Any) -> tuple[int, float, str]:
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        return (0, float(v), "") if numeric else (1, 0.0, str(v))

    values = {_key(g.get("params", {}).get(name)): g.get("params", {}).get(name) for g in grid}
    return sorted(values.values(), key=order)


def _sweep(data: RunData, variant: str, column: Column, names: Sequence[str]) -> Sweep:
    grid = data.run.get("grid", [])
    x_name, y_name = names[0], (names[1] if len(names) > 1 else None)
    xs = _axis(grid, x_name)
    ys = _axis(grid, y_name) if y_name is not None else [None]
    scale = 100.0 if column.show is pct else 1.0
    found: dict[tuple[str, str], float] = {}
    for p in data.of_variant(variant):
        value = column.get(p.performance)
        at = (_key(p.params.get(x_name)), _key(p.params.get(y_name) if y_name else None))
        found.setdefault(at, math.nan if value is None else float(value) * scale)
    cells = [[found.get((_key(x), _key(y)), math.nan) for x in xs] for y in ys]
    unit = " (%)" if scale == 100.0 else ""
    return Sweep(
        f"{variant}: {column.heading}{unit}",
        x_name,
        [str(x) for x in xs],
        y_name,
        [str(y) for y in ys],
        cells,
    )


def params_section(data: RunData) -> str:
    head = '<h2 id="params">Parameters</h2>'
    grid = data.run.get("grid", [])
    if len(grid) < 2:
        return f"{head}\n<p>One parameter set: nothing to compare.</p>"
    names = _varying(grid)
    if not 1 <= len(names) <= 2:
        listed = ", ".join(names) or "none"
        return f"{head}\n<p>{len(names)} parameters vary ({e(listed)}): see the metrics table.</p>"
    panels = [_sweep(data, v, c, names) for v in data.variants for c in SWEEP_COLUMNS]
    svg = sweep_charts(panels, cols=len(SWEEP_COLUMNS), prefix="params")
    return f"{head}\n<figure>{svg}</figure>"


SECTIONS: tuple[Callable[[RunData], str], ...] = (
    run_section,
    metrics_section,
    equity_section,
    drawdown_section,
    pnl_section,
    ab_section,
    params_section,
)

NOTES = """<p class="note">Equity is the capital plus the summed P&amp;L of a portfolio's
shards, one point per session close after the start. Returns are daily; Sharpe and
Sortino are annualised with 252 days and a risk-free rate of 0 (Sharpe: sample standard
deviation; Sortino: downside deviation over all days). Max drawdown is the largest fall
from a running peak, as a fraction of the peak. A round trip is a closed position, its
P&amp;L net of fees; the profit factor is gross profit over gross loss (∞ when nothing
was lost); expectancy is the mean round-trip P&amp;L. — marks a figure that is not
defined (no trades, fewer than two days, a flat curve).</p>"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 0.5rem 0; } svg { max-width: 100%; height: auto; }
.note { font-size: 0.8rem; color: #555; max-width: 60rem; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""
