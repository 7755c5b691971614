"""The backtest report's figures, each rendered to an SVG string to inline in the HTML.

Figures are plain `matplotlib.figure.Figure` objects drawn by the SVG backend: no pyplot,
so no GUI backend, no global figure registry to leak into, nothing to close but the
figure itself (cleared once written). Text stays text (`svg.fonttype: none`), ids are
salted with a fixed string so that a report renders the same twice, and every id is
prefixed per figure so that several SVGs can share one HTML document.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter, StrMethodFormatter

MAX_SERIES = 12
WIDTH = 9.0
HEIGHT = 3.6
LEGEND_RIGHT = 0.7
SVG_RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "tandem-report", "font.size": 9.0}
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a portfolio's curve. Series of equal `slot` share a colour."""

    label: str
    times: Sequence[datetime]
    values: Sequence[float]
    slot: int = 0
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Sweep:
    """One metric over the parameter grid: a heat map over two parameters (`cells[y][x]`),
    or bars over one (`y_name` None, one row of cells). NaN marks a missing value."""

    title: str
    x_name: str
    x_labels: list[str]
    y_name: str | None
    y_labels: list[str]
    cells: list[list[float]]


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as an `<svg>` element, its ids prefixed with `prefix`."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buffer, format="svg", metadata=NO_METADATA)
    fig.clear()
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    return _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)


def style() -> Any:
    """The report's matplotlib settings; every figure is drawn inside them."""
    return matplotlib.rc_context(SVG_RC)


def _figure(rows: int = 1, height: float = HEIGHT, right: float = 0.97) -> Figure:
    """Fixed margins: a constrained layout measures every text and costs more than the
    drawing itself."""
    fig = Figure(figsize=(WIDTH, height * rows))
    fig.subplots_adjust(left=0.1, right=right, bottom=0.14 / rows, top=1 - 0.1 / rows)
    fig.subplots_adjust(wspace=0.3, hspace=0.45)
    return fig


def colour(slot: int) -> Any:
    """Ten distinct colours (tab10), then their lighter tones (tab20's odd ones)."""
    if slot < 10:
        return matplotlib.colormaps["tab10"](slot)
    return matplotlib.colormaps["tab20"]((2 * (slot - 10) + 1) % 20)


def _time_axis(ax: Axes) -> None:
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _draw_lines(ax: Axes, series: Sequence[Series], percent: bool) -> None:
    for s in series:
        ax.plot(
            cast(Any, list(s.times)),
            list(s.values),
            label=s.label,
            color=colour(s.slot),
            linestyle="--" if s.dashed else "-",
            linewidth=1.2,
        )
    _time_axis(ax)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    else:  # equity in plain dollars (10,001.28), never "+1e4" and an offset
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.2f}"))
    ax.grid(alpha=0.3)


def line_chart(series: Sequence[Series], ylabel: str, prefix: str, percent: bool = False) -> str:
    """Every series on one time axis, legend on the right."""
    fig = _figure(right=LEGEND_RIGHT)
    ax = fig.add_subplot()
    _draw_lines(ax, series, percent)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return to_svg(fig, prefix)


def side_by_side(panels: Sequence[tuple[str, Sequence[Series]]], ylabel: str, prefix: str) -> str:
    """One panel per title, side by side, on a shared y axis."""
    fig = _figure()
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, series) in zip(axes, panels, strict=True):
        _draw_lines(ax, series, percent=False)
        ax.set_title(title)
        if series:
            ax.legend(fontsize="x-small")
    axes[0].set_ylabel(ylabel)
    return to_svg(fig, prefix)


def histograms(panels: Sequence[tuple[str, Sequence[Series]]], prefix: str) -> str:
    """Per panel (a variant), the distribution of round-trip P&L of each of its series
    (a portfolio; `values` its P&Ls) as step histograms over common bins."""
    every = [v for _, group in panels for s in group for v in s.values]
    if not every:
        every = [0.0]
    bins = np.histogram_bin_edges(every, bins=min(30, max(5, round(math.sqrt(len(every))))))
    fig = _figure(right=LEGEND_RIGHT)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, group) in zip(axes, panels, strict=True):
        ax.set_title(title)
        for s in group:
            if s.values:
                ax.hist(list(s.values), bins=bins, histtype="step", linewidth=1.2,
                        color=colour(s.slot), linestyle="--" if s.dashed else "-",
                        label=s.label)  # fmt: skip
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("P&L per round trip")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("round trips")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        more = ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        fig.legend(handles, labels, fontsize="small", loc="upper left", bbox_to_anchor=(0.71, 0.9))
    return to_svg(fig, prefix)


def _heat_map(fig: Figure, ax: Axes, sweep: Sweep) -> None:
    cells = np.asarray(sweep.cells, dtype=np.float64)
    finite = cells[np.isfinite(cells)]
    span = float(np.abs(finite).max()) if finite.size else 1.0
    span = span or 1.0
    image = ax.imshow(cells, cmap="RdYlGn", vmin=-span, vmax=span, aspect="auto")
    ax.set_xticks(range(len(sweep.x_labels)), sweep.x_labels)
    ax.set_yticks(range(len(sweep.y_labels)), sweep.y_labels)
    ax.set_xlabel(sweep.x_name)
    ax.set_ylabel(sweep.y_name or "")
    for (y, x), value in np.ndenumerate(cells):
        text = "n/a" if not math.isfinite(value) else f"{value:.3g}"
        ax.text(x, y, text, ha="center", va="center", fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.8)


def _bars(ax: Axes, sweep: Sweep) -> None:
    values = [0.0 if not math.isfinite(v) else v for v in sweep.cells[0]]
    colours = ["#55a868" if v >= 0 else "#c44e52" for v in values]
    ax.bar(sweep.x_labels, values, color=colours)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(sweep.x_name)


def sweep_charts(panels: Sequence[Sweep], cols: int, prefix: str) -> str:
    """Heat maps (two parameters) or bar charts (one), `cols` panels a row."""
    rows = math.ceil(len(panels) / cols)
    fig = _figure(rows, height=3.2)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, sweep in zip(axes, panels, strict=False):
        ax.set_title(sweep.title, fontsize="small")
        if sweep.y_name is None:
            _bars(ax, sweep)
        else:
            _heat_map(fig, ax, sweep)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return to_svg(fig, prefix)
