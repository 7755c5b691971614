"""AnalyticsActor: the experiment queries (`storage.analytics`) over the Parquet event log,
in a process of their own, so a heavy read never runs in an API replica that is answering
webhooks. Each call opens an in-memory DuckDB and runs in a worker thread."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

from engine import analytics as an
from storage import analytics as queries


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
            with duckdb.connect() as con:
                return query(con, self._events, *args)

        return await asyncio.to_thread(work)
