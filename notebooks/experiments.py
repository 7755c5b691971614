# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Experiment results: A (Engine 1) against B (Engine 2, shadow)
#
# Reproduces `GET /experiments/{id}/results` from the Parquet event log alone, while
# Tandem runs: the same SQL text (`engine.analytics.RESULTS_SQL`) on the same files,
# opened twice, by DuckDB and by polars, and the same statistics. Definitions are in
# `engine/analytics.py` and `docs/experiments.md`.
#
# As a script: `python notebooks/experiments.py --events var/events --experiment ab-1`
# (after `make run`, the replay's log is under `var/replay-<scenario>/events`). In Jupyter,
# set `TANDEM_EVENTS_DIR` and `TANDEM_EXPERIMENT_ID` or edit the defaults below.

# %%
from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import duckdb
import polars as pl

from engine import analytics as an
from storage.analytics import agent_performance, events_relation

parser = argparse.ArgumentParser(description="Experiment results from the event log")
parser.add_argument("--events", default=os.environ.get("TANDEM_EVENTS_DIR", "var/events"))
parser.add_argument("--experiment", default=os.environ.get("TANDEM_EXPERIMENT_ID", "ab-1"))
args, _ = parser.parse_known_args()  # a kernel passes arguments of its own
EVENTS = Path(args.events)
EXPERIMENT = args.experiment
print(f"event log {EVENTS}, experiment {EXPERIMENT}")

# %% [markdown]
# ## DuckDB on the Parquet files
#
# `events_relation` names the log's live segments (landed files only, each event once,
# also while a compaction runs); `RESULTS_SQL` reads it for `{events}`.

# %%
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")


def results_rows(events: str) -> list[dict[str, object]]:
    sql = an.render(an.RESULTS_SQL, events)
    cursor = con.execute(sql, an.bind(sql, {"experiment_id": EXPERIMENT}))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


duck_rows = results_rows(events_relation(EVENTS))
results = an.experiment_results(EXPERIMENT, duck_rows)

# %% [markdown]
# ## polars on the same files
#
# polars scans the same `events-*.parquet` files and drops a range seen twice by `seq`
# (what `storage.eventlog.events_sql` does); DuckDB then runs the same SQL text on the
# polars frame. The two answers must agree.


# %%
def agree(mine: list[dict[str, object]], theirs: list[dict[str, object]]) -> bool:
    """Equal rows, floats to 1e-9 relative (parallel sums may add in another order)."""
    for a, b in zip(mine, theirs, strict=True):
        for key, value in a.items():
            other = b[key]
            if isinstance(value, float) and isinstance(other, float):
                if not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif value != other:
                return False
    return True


files = sorted(str(p) for p in EVENTS.glob("events-*.parquet"))
if files:
    events_pl = pl.scan_parquet(files).unique(subset="seq", keep="first").collect()
    con.register("events_pl", events_pl.to_arrow())
    polars_rows = results_rows("events_pl")
    assert agree(polars_rows, duck_rows), "polars and DuckDB read different events"
    print(f"polars: {events_pl.height} events read, the same results as DuckDB")

# %% [markdown]
# ## Per arm
#
# A: Engine 1's closed positions on A's signals. B: the shadow positions on B's signals.
# A_on_B: Engine 1's closed positions on B's signals (the paired comparison).

# %%
arms = pl.DataFrame([asdict(arm) for arm in results.arms.values()])
with pl.Config(tbl_cols=-1, tbl_width_chars=200, float_precision=4):
    print(
        arms.select(
            "arm",
            "signals",
            "units",
            "trades",
            "win_rate",
            "avg_pnl",
            "expectancy",
            "profit_factor",
            "max_drawdown",
        )
    )

# %% [markdown]
# ## Significance
#
# Welch's t-test on per-unit returns and a two-proportion z-test on win rates, B minus
# the control, with 95 % intervals; "insufficient sample" below `MIN_UNITS` units a side.

# %%
tests = pl.DataFrame(
    [
        {"treatment": c.treatment, "control": c.control} | asdict(test)
        for c in results.comparisons
        for test in (c.welch, c.win_rate)
    ]
)
with pl.Config(tbl_cols=-1, tbl_width_chars=200, float_precision=4):
    print(f"MIN_UNITS = {results.min_units}")
    print(
        tests.select(
            "treatment",
            "control",
            "test",
            "status",
            "n_treatment",
            "n_control",
            "estimate",
            "p_value",
            "ci_low",
            "ci_high",
        )
    )

# %% [markdown]
# ## Agents
#
# Per agent: activations, the closed shadow trades it backed, and its directional votes
# scored as forecasts that the trade wins (Brier score; calibration by confidence bucket).

# %%
agents = agent_performance(con, EVENTS, an.ListFilter(experiment_id=EXPERIMENT))
if agents:
    table = pl.DataFrame([asdict(a) for a in agents]).drop("calibration")
    with pl.Config(tbl_cols=-1, tbl_width_chars=200, float_precision=4):
        print(table)

# %% [markdown]
# ## The answer, as the API gives it (last line, JSON)

# %%
print(json.dumps(asdict(results), default=str))
