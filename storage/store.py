"""The Store: the only read-write DuckDB connection, with group commit.

Callers `await store.write(request)`. Requests that arrive while a commit runs wait in a
queue; the next commit takes them all (up to `max_batch`) in one transaction, then answers
each caller. Nobody is answered before their batch is durable. If a batch fails, it is
rolled back and re-run request by request; the failing request alone gets the error.

Reads never run on the commit thread: `query` uses separate cursors on reader threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from engine.clock import Clock
from engine.errors import Conflict, Fatal, Rejected, Retryable, TandemError
from engine.hashchain import GENESIS
from storage.eventlog import EventLog
from storage.migrate import Migrator
from storage.writes import Plan, Stage, StoreState, WriteRequest, WriteResult, plan

log = logging.getLogger(__name__)

Outcome = WriteResult | TandemError


class StoreObserver(Protocol):
    def on_batch(self, size: int, commit_seconds: float, failed: int) -> None: ...


@dataclass(frozen=True)
class StoreHealth:
    ok: bool
    last_seq: int
    batches: int
    writes: int
    detail: str


def open_database(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, or say clearly that another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise Fatal(
                f"the database {path} is in use by another process (a running Tandem?)",
                "stop it first, or talk to the running instance through its API",
            ) from None
        raise Fatal(f"cannot open the database {path}: {exc}") from None


class Store:
    """Group-commit writer over one DuckDB file. Use from one asyncio event loop."""

    def __init__(
        self,
        path: Path,
        clock: Clock,
        *,
        max_batch: int = 512,
        readers: int = 2,
        observer: StoreObserver | None = None,
        dedupe_keys: int = 1_000_000,
    ) -> None:
        self._dedupe_keys = dedupe_keys
        self._path = path
        self._clock = clock
        self._max_batch = max_batch
        self._observer = observer
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._reader_pool = ThreadPoolExecutor(readers, thread_name_prefix="store-reader")
        self._cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self._readers = readers
        self._queue: asyncio.Queue[tuple[WriteRequest, asyncio.Future[WriteResult]]] | None
        self._queue = None
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._state: StoreState | None = None
        self._task: asyncio.Task[None] | None = None
        self._fk_order: dict[str, int] = {}
        self.batches = 0
        self.writes = 0

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, migrate: bool = True) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._open, migrate)
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._commit_loop(), name="store-commit-loop")

    def _open(self, migrate: bool) -> None:
        conn = open_database(self._path)
        migrator = Migrator(conn, self._clock, None)
        if migrate:
            migrator.up()
        else:
            migrator.verify()
        self._conn = conn
        last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self._state = StoreState(
            self._load,
            int(last[0]) if last else 0,
            self._dedupe_keys,
            last_hash=str(last[1]) if last and last[1] is not None else GENESIS,
        )
        self._state.load_recent()
        self._fk_order = _table_order(conn)
        for _ in range(self._readers):
            self._cursors.put(conn.cursor())

    async def drain(self) -> None:
        """Wait until every queued write has been committed and answered."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        """Finish queued writes, then close the connection."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._close_conn)
        self._writer.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)

    def _close_conn(self) -> None:
        while not self._cursors.empty():
            self._cursors.get().close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- writes -----------------------------------------------------------------------------

    async def write(self, request: WriteRequest) -> WriteResult:
        """Queue `request` for the next group commit; return once it is durable."""
        if self._queue is None:
            raise Retryable("store not started")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def write_alone(self, request: WriteRequest) -> WriteResult:
        """Commit `request` in a transaction of its own (the baseline group commit beats)."""
        loop = asyncio.get_running_loop()
        (outcome,) = await loop.run_in_executor(self._writer, self._commit, [request])
        if isinstance(outcome, TandemError):
            raise outcome
        return outcome

    async def _commit_loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await loop.run_in_executor(
                    self._writer, self._commit, [r for r, _ in batch]
                )
            except Exception as exc:  # a bug or a dead disk: every caller hears about it
                log.exception("store commit failed")
                outcomes = [Retryable(f"store commit failed: {exc}")] * len(batch)
            for (_request, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    if isinstance(outcome, TandemError):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                self._queue.task_done()

    def _commit(self, requests: Sequence[WriteRequest]) -> list[Outcome]:
        """Run on the writer thread: plan, write and commit a batch; isolate failures."""
        started = time.perf_counter()
        outcomes: dict[int, Outcome] = {}
        pending = list(range(len(requests)))
        while pending:
            stage, plans = self._plan(requests, pending, outcomes)
            culprit = self._execute(plans)
            if culprit is None:
                stage.apply()
                outcomes.update({i: p.result for i, p in plans})
                break
            index, error = culprit
            outcomes[index] = error
            pending = [i for i in pending if i != index]
        assert self._state is not None
        self._state.trim()
        failed = sum(1 for o in outcomes.values() if isinstance(o, TandemError))
        self.batches += 1
        self.writes += len(requests)
        if self._observer is not None:
            self._observer.on_batch(len(requests), time.perf_counter() - started, failed)
        return [outcomes[i] for i in range(len(requests))]

    def _plan(
        self, requests: Sequence[WriteRequest], pending: list[int], outcomes: dict[int, Outcome]
    ) -> tuple[Stage, list[tuple[int, Plan]]]:
        assert self._state is not None
        stage = Stage(self._state, self._clock.now())
        plans = []
        for i in pending:
            before = stage.snapshot()
            try:
                plans.append((i, plan(requests[i], stage)))
            except TandemError as exc:
                stage.restore(before)
                outcomes[i] = exc
        for i in list(pending):
            if i in outcomes:
                pending.remove(i)
        return stage, plans

    def _execute(self, plans: list[tuple[int, Plan]]) -> tuple[int, TandemError] | None:
        """Write all plans in one transaction. On failure, find the request that fails."""
        assert self._conn is not None
        conn = self._conn
        if not any(p.inserts or p.updates for _i, p in plans):
            return None
        try:
            conn.execute("BEGIN TRANSACTION")
            self._write_grouped(conn, [p for _i, p in plans])
            conn.execute("COMMIT")
            return None
        except duckdb.Error:
            conn.execute("ROLLBACK")
        return self._find_culprit(conn, plans)

    def _find_culprit(
        self, conn: duckdb.DuckDBPyConnection, plans: list[tuple[int, Plan]]
    ) -> tuple[int, TandemError] | None:
        """Replay the plans one by one in a transaction; the first that fails is the culprit.

        If none fails one by one, the sequential run is itself a valid commit.
        """
        conn.execute("BEGIN TRANSACTION")
        for index, p in plans:
            try:
                self._write_grouped(conn, [p])
            except duckdb.Error as exc:
                conn.execute("ROLLBACK")
                return index, _map_db_error(exc)
        conn.execute("COMMIT")
        return None

    def _write_grouped(self, conn: duckdb.DuckDBPyConnection, plans: Sequence[Plan]) -> None:
        """All inserts first, one Arrow table per table, parents before children; then updates
        in arrival order. New rows can only reference rows that exist or are inserted here."""
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in plans:
            for table, row in p.inserts:
                by_table[table].append(row)
        for table in sorted(by_table, key=lambda t: self._fk_order.get(t, 0)):
            # DuckDB reads the Arrow table straight from this local variable (a replacement
            # scan): no view is registered in the catalog, which costs more than the insert.
            _tandem_rows = _to_arrow(by_table[table])
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _tandem_rows")
        for p in plans:
            for sql, params in p.updates:
                conn.execute(sql, params)

    def _load(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """State loading for the planner: runs on the writer thread, outside transactions."""
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    # -- reads ------------------------------------------------------------------------------

    async def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a read on a reader cursor (never on the commit thread); return Arrow."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, self._read, sql, list(params))

    def _read(self, sql: str, params: list[Any]) -> pa.Table:
        cursor = self._cursors.get()
        try:
            return cursor.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise Rejected("invalid_query", str(exc)) from None
        finally:
            self._cursors.put(cursor)

    async def export_events(self, log: EventLog, max_rows: int) -> int:
        """Land committed outbox events after the log's watermark as one Parquet file."""
        loop = asyncio.get_running_loop()
        landed: int = await loop.run_in_executor(self._reader_pool, self._export, log, max_rows)
        return landed

    def _export(self, log: EventLog, max_rows: int) -> int:
        cursor = self._cursors.get()
        try:
            upto = log.landed_upto()
            table = cursor.sql(
                "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", params=[upto, max_rows]
            ).to_arrow_table()
        finally:
            self._cursors.put(cursor)
        if table.num_rows == 0:
            return 0
        log.land(table)
        return int(table.num_rows)

    def health(self) -> StoreHealth:
        ok = self._conn is not None and self._task is not None and not self._task.done()
        last_seq = self._state.last_seq if self._state is not None else 0
        detail = "ok" if ok else "not running"
        return StoreHealth(ok, last_seq, self.batches, self.writes, detail)


def _to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for name in row:
            columns.setdefault(name, [])
    for name, values in columns.items():
        values.extend(row.get(name) for row in rows)
    return pa.Table.from_pydict(columns)


def _table_order(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Depth of each table in the foreign-key graph: parents get smaller numbers."""
    edges = conn.execute(
        "SELECT table_name, referenced_table FROM duckdb_constraints() "
        "WHERE constraint_type = 'FOREIGN KEY'"
    ).fetchall()
    parents: dict[str, set[str]] = defaultdict(set)
    for child, parent in edges:
        if child != parent:
            parents[str(child)].add(str(parent))

    def depth(table: str, seen: frozenset[str] = frozenset()) -> int:
        if table in seen:
            return 0
        return 1 + max((depth(p, seen | {table}) for p in parents[table]), default=-1)

    return {t: depth(t) for t in list(parents)}


def _map_db_error(exc: duckdb.Error) -> TandemError:
    if isinstance(exc, duckdb.ConstraintException):
        return Conflict("constraint_violation", str(exc).splitlines()[0])
    if isinstance(exc, duckdb.IOException):
        return Retryable(f"store I/O error: {exc}")
    return Rejected("invalid_write", str(exc).splitlines()[0])
