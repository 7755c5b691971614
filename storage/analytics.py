"""Runs the experiment analytics (`engine.analytics`) on DuckDB over the Parquet event log.

Each function takes a DuckDB connection (any: in-memory is enough, nothing is written) and
the event log directory, and returns plain dataclasses or dicts. A directory with no
landed file yet reads as an empty log.

Which files: `events_relation` reads the event log's live segments
(`EventLog.live_segments`): landed files only (a temp file is never named), and of a
range that a compaction left twice (the merged file and the small ones it covers, until
they are deleted) only the merged file. That is the guarantee `events_sql` gives by
deduplicating every row by `seq`, without its cost: that window holds every payload, and
on 50 M events (10 M shadow trades) it took the results query from 53 s to 146 s
(bench/analytics.py). `events_sql_relation` is the `events_sql` form, for comparison. A
file deleted by a compaction between the listing and the read fails the read; `run` then
lists again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from engine import analytics as an
from storage.eventlog import EventLog, events_sql

_ATTEMPTS = 3

# An empty relation with the event log's columns, for a directory with no file yet.
_NO_EVENTS = (
    "(SELECT CAST(NULL AS BIGINT) AS seq, CAST(NULL AS TIMESTAMPTZ) AS event_time, "
    "CAST(NULL AS TIMESTAMPTZ) AS recorded_at, CAST(NULL AS VARCHAR) AS kind, "
    "CAST(NULL AS VARCHAR) AS stream, CAST(NULL AS VARCHAR) AS entity_id, "
    "CAST(NULL AS VARCHAR) AS payload WHERE false)"
)


def events_relation(events_dir: Path | str) -> str:
    """The relation the analytics SQL reads for `{events}`: the live segments of
    `events_dir`, each landed event once."""
    directory = Path(events_dir)
    if not directory.is_dir():
        return _NO_EVENTS
    files = [str(seg.path).replace("'", "''") for seg in EventLog(directory).live_segments()]
    if not files:
        return _NO_EVENTS
    listed = ", ".join(f"'{f}'" for f in files)
    return f"(SELECT * FROM read_parquet([{listed}]))"


def events_sql_relation(events_dir: Path | str) -> str:
    """The same events through `events_sql` (every landed file, deduplicated by `seq`)."""
    directory = Path(events_dir)
    if not any(directory.glob("events-*.parquet")):
        return _NO_EVENTS
    return f"({events_sql(str(directory / 'events-*.parquet'))})"


def run(
    con: duckdb.DuckDBPyConnection,
    template: str,
    events_dir: Path | str,
    values: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows of one analytics query as dicts. A file that a compaction removed between the
    listing and the read fails the read: the files are listed again, up to 3 times."""
    attempt = 1
    while True:
        try:
            return _run_once(con, an.render(template, events_relation(events_dir)), values)
        except duckdb.IOException:
            if attempt >= _ATTEMPTS:
                raise
            attempt += 1


def _run_once(
    con: duckdb.DuckDBPyConnection, sql: str, values: dict[str, Any] | None
) -> list[dict[str, Any]]:
    cursor = con.execute(sql, an.bind(sql, values or {}))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def experiment_results(
    con: duckdb.DuckDBPyConnection,
    events_dir: Path | str,
    experiment_id: str,
    min_units: int = an.MIN_UNITS,
) -> an.ExperimentResults:
    rows = run(con, an.RESULTS_SQL, events_dir, {"experiment_id": experiment_id})
    return an.experiment_results(experiment_id, rows, min_units)


def agent_performance(
    con: duckdb.DuckDBPyConnection, events_dir: Path | str, filters: an.ListFilter
) -> list[an.AgentPerformance]:
    """Per agent (filtered by `agent`, `experiment_id`, `since`/`until` of the vote)."""
    rows = run(con, an.AGENTS_SQL, events_dir, filters.values())
    return [an.agent_performance(row) for row in rows]


def list_experiments(
    con: duckdb.DuckDBPyConnection, events_dir: Path | str, filters: an.ListFilter
) -> list[dict[str, Any]]:
    """Assignment records, newest first (`experiment_id`, `symbol`, `variant`, `since`,
    `until` of the assignment; paged)."""
    return run(con, an.EXPERIMENTS_SQL, events_dir, filters.values())


def list_shadow_trades(
    con: duckdb.DuckDBPyConnection, events_dir: Path | str, filters: an.ListFilter
) -> list[dict[str, Any]]:
    """Closed shadow positions, newest first (`experiment_id`, `symbol`, `agent` among
    those that backed it, `since`/`until` of `closed_at`; paged)."""
    return run(con, an.SHADOW_TRADES_SQL, events_dir, filters.values())


def list_shadow_positions(
    con: duckdb.DuckDBPyConnection, events_dir: Path | str, filters: an.ListFilter
) -> list[dict[str, Any]]:
    """Open and closed shadow positions, newest first (`experiment_id`, `status`,
    `symbol`, `since`/`until` of the opening; paged)."""
    return run(con, an.SHADOW_POSITIONS_SQL, events_dir, filters.values())
