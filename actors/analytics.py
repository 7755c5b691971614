"""AnalyticsActor: the experiment queries (`storage.analytics`) over the Parquet event log,
in a process of their own, so a heavy read never runs in an API replica that is answering
webhooks. Each call opens an in-memory DuckDB with one thread and a memory cap and runs in
a worker thread: bench/analytics.py measured a query at DuckDB's defaults (every core)
pushing the webhook p99 towards TradingView's 3 s timeout, and one thread keeping it in
the noise."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

from engine import analytics as an
from storage import analytics as queries

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "threads": 1,
    "memory_limit": "1GB",
}


class AnalyticsActor:
    def __init__(self, events_dir: str) -> None:
        self._events = Path(events_dir)

    async def results(self, experiment_id: str) -> dict[str, Any]:
        found = await self._run(queries.experiment_results, experiment_id)
        return asdict(found)

    async def agents(self, filters: an.ListFilter) -> list[dict[str, Any]]:
        return [asdict(a) for a in await self._run(queries.agent_performance, filters)]

    async def experiments(self, filters: an.ListFilter) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._run(queries.list_experiments, filters)
        return rows

    async def shadow_trades(self, filters: an.ListFilter) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._run(queries.list_shadow_trades, filters)
        return rows

    async def shadow_positions(self, filters: an.ListFilter) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._run(queries.list_shadow_positions, filters)
        return rows

    async def _run(self, query: Any, *args: Any) -> Any:
        def work() -> Any:
            with duckdb.connect(config=DUCKDB_CONFIG) as con:
                return query(con, self._events, *args)

        return await asyncio.to_thread(work)
