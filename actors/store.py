"""StoreActor: owns the Store (the only read-write DuckDB connection) and the event exporter.

A plain class; `actors/system.py` wraps it with `ray.remote`. It starts on its first call
(so a restarted actor reopens the database by itself) and lands committed outbox events
as Parquet every `export_interval_s` of its clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from actors.metrics import StoreMetrics
from engine.clock import Clock, LiveClock
from engine.errors import NotFound
from engine.events import Event
from engine.intake import SignalDraft
from engine.read_models import ListQuery
from storage.eventlog import EventLog
from storage.queries import list_sql, signal_trail_sql
from storage.store import Store
from storage.writes import AppendEvents, InsertSignal, Noop, WriteRequest, WriteResult

log = logging.getLogger(__name__)


class StoreActor:
    def __init__(
        self,
        db_path: str,
        events_dir: str,
        *,
        max_batch: int = 512,
        export_interval_s: float = 1.0,
        export_max_rows: int = 100_000,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock if clock is not None else LiveClock()
        self._metrics = StoreMetrics()
        self._store = Store(Path(db_path), self._clock, max_batch=max_batch, observer=self._metrics)
        self._log = EventLog(Path(events_dir))
        self._export_interval_s = export_interval_s
        self._export_max_rows = export_max_rows
        self._start_lock = asyncio.Lock()
        self._started = False
        self._exporter: asyncio.Task[None] | None = None
        self._export_lock = asyncio.Lock()
        self._last_export_at: datetime | None = None
        self._last_export_error: str | None = None

    async def start(self) -> dict[str, Any]:
        async with self._start_lock:
            if not self._started:
                self._log.cleanup()
                await self._store.start()
                self._exporter = asyncio.create_task(self._export_loop(), name="event-exporter")
                self._started = True
        return await self.health()

    async def write(self, request: WriteRequest) -> WriteResult:
        if not self._started:
            await self.start()
        return await self._store.write(request)

    async def write_alone(self, request: WriteRequest) -> WriteResult:
        await self.start()
        return await self._store.write_alone(request)

    async def record_signal(self, draft: SignalDraft) -> WriteResult:
        """Dedupe and durably insert an accepted alert with its events (one transaction)."""
        return await self.write(
            InsertSignal(
                row=draft.row,
                dedupe_key=draft.dedupe_key,
                received_at=draft.received_at,
                window_s=draft.window_s,
                events=draft.events,
                duplicate_events=draft.duplicate_events,
            )
        )

    async def record_events(self, events: tuple[Event, ...]) -> WriteResult:
        return await self.write(AppendEvents(events))

    async def noop(self) -> None:
        """An actor hop that does no work: the baseline for benchmarks."""

    async def process_id(self) -> int:
        return os.getpid()

    async def ping(self) -> WriteResult:
        """A round trip through the commit queue (nothing written)."""
        return await self.write(Noop())

    async def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        await self.start()
        return await self._store.query(sql, params)

    async def list_rows(self, query: ListQuery) -> list[dict[str, Any]]:
        sql, params = list_sql(query)
        return list((await self.query(sql, params)).to_pylist())

    async def signal_trail(self, signal_id: int) -> dict[str, Any]:
        """The whole trail of one signal: signal, decision, orders, fills, positions, events."""
        parts = signal_trail_sql()
        tables = await asyncio.gather(*(self.query(sql, [signal_id]) for _n, sql in parts))
        trail = {name: t.to_pylist() for (name, _sql), t in zip(parts, tables, strict=True)}
        if not trail["signal"]:
            raise NotFound("not_found", f"no signal {signal_id}")
        trail["signal"] = trail["signal"][0]
        trail["decision"] = trail["decision"][0] if trail["decision"] else None
        return trail

    async def export_now(self) -> int:
        """Land every committed event not yet in Parquet; return how many."""
        await self.start()
        async with self._export_lock:
            total = 0
            while (n := await self._store.export_events(self._log, self._export_max_rows)) > 0:
                total += n
            self._last_export_at = self._clock.now()
            self._last_export_error = None
            lag = self._store.health().last_seq - self._log.landed_upto()
            self._metrics.on_export(total, lag)
            return total

    async def compact(self, target_rows: int = 1_000_000, min_files: int = 4) -> int:
        async with self._export_lock:
            return len(self._log.compact(target_rows, min_files))

    async def health(self) -> dict[str, Any]:
        store = self._store.health()
        landed = self._log.landed_upto() if self._started else 0
        exporter_ok = self._exporter is not None and not self._exporter.done()
        return {
            "store": {
                "ok": store.ok,
                "last_seq": store.last_seq,
                "batches": store.batches,
                "writes": store.writes,
                "detail": store.detail,
            },
            "event_log": {
                "ok": exporter_ok and self._last_export_error is None,
                "landed_upto": landed,
                "lag": store.last_seq - landed,
                "last_export_at": self._last_export_at,
                "detail": self._last_export_error or ("ok" if exporter_ok else "not running"),
                "glob": self._log.glob,
            },
        }

    async def stop(self) -> None:
        """Drain queued writes, land every event, close the database."""
        if not self._started:
            return
        if self._exporter is not None:
            self._exporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._exporter
        await self._store.drain()
        await self.export_now()
        await self._store.close()
        self._started = False

    async def _export_loop(self) -> None:
        while True:
            await self._clock.sleep(self._export_interval_s)
            try:
                await self.export_now()
            except Exception as exc:  # reported through health; the loop keeps trying
                self._last_export_error = f"{type(exc).__name__}: {exc}"
                log.exception("event export failed")
