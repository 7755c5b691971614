"""The Store on a real DuckDB file: group commit, isolation of failures, dedupe, outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl
import pytest

from engine.clock import SimClock
from engine.errors import Conflict, Rejected
from engine.events import Event
from storage.eventlog import EventLog
from storage.store import Store
from storage.writes import AppendEvents, Insert, Update, WriteResult
from tests.integration.storage_helpers import T0, audit_request, signal_request

R = TypeVar("R")


def with_store(path: Path, body: Callable[[Store], Awaitable[R]], **kw: Any) -> R:
    async def run() -> R:
        store = Store(path, SimClock(T0), **kw)
        await store.start()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(run())


class BatchSizes:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def on_batch(self, size: int, commit_seconds: float, failed: int) -> None:
        self.sizes.append(size)


def test_one_bad_request_in_a_batch_of_64_fails_alone(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    observer = BatchSizes()
    requests = [audit_request(n=i) for i in range(63)]
    requests.insert(17, audit_request(actor=None, n=999))  # NOT NULL violation

    async def body(store: Store) -> list[Any]:
        return await asyncio.gather(*(store.write(r) for r in requests), return_exceptions=True)

    outcomes = with_store(db, body, observer=observer)
    failures = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert failures == [17]
    assert isinstance(outcomes[17], Rejected)
    assert max(observer.sizes) == 64  # it really was one batch
    conn = duckdb.connect(str(db))
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (63,)
    seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq").fetchall()]
    assert seqs == list(range(1, 64))  # the failed request consumed no sequence number
    ok_ids = sorted(o.ids[0] for o in outcomes if isinstance(o, WriteResult))
    assert ok_ids == list(range(1, 64))


def test_fifty_concurrent_duplicates_make_exactly_one_signal(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"

    async def body(store: Store) -> list[WriteResult]:
        return await asyncio.gather(*(store.write(signal_request()) for _ in range(50)))

    results = with_store(db, body)
    originals = [r for r in results if r.duplicate_of is None]
    assert len(originals) == 1
    assert {r.duplicate_of for r in results if r.duplicate_of is not None} == {originals[0].ids[0]}
    conn = duckdb.connect(str(db))
    assert conn.execute("SELECT count(*) FROM signals").fetchone() == (1,)


def test_dedupe_window_is_sixty_seconds_of_event_time_and_survives_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.duckdb"
    first = with_store(db, lambda s: s.write(signal_request(received_at=T0)))
    at_59 = T0 + timedelta(seconds=59)
    again = with_store(db, lambda s: s.write(signal_request(received_at=at_59)))
    assert again.duplicate_of == first.ids[0]  # found in the database after a restart
    later = with_store(
        db, lambda s: s.write(signal_request(received_at=T0 + timedelta(seconds=61)))
    )
    assert later.duplicate_of is None and later.ids == (first.ids[0] + 1,)
    other_bar = with_store(db, lambda s: s.write(signal_request(bar_minute=1, received_at=at_59)))
    assert other_bar.duplicate_of is None


def test_uniqueness_is_decided_in_memory_and_the_loser_gets_a_conflict(tmp_path: Path) -> None:
    def order_signal(key: str) -> Insert:
        row = {"logged_at": T0, "actor": "a", "action": "x", "target": key}
        return Insert("audit_log", (row,), id_column="audit_id", unique=(("target",),))

    async def body(store: Store) -> list[Any]:
        return await asyncio.gather(
            store.write(order_signal("same")),
            store.write(order_signal("same")),
            store.write(order_signal("other")),
            return_exceptions=True,
        )

    outcomes = with_store(tmp_path / "t.duckdb", body)
    assert isinstance(outcomes[1], Conflict) and outcomes[1].code == "duplicate_key"
    assert isinstance(outcomes[0], WriteResult) and isinstance(outcomes[2], WriteResult)


def test_uniqueness_is_also_known_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    row = {"logged_at": T0, "actor": "a", "action": "x", "target": "k"}
    req = Insert("audit_log", (row,), id_column="audit_id", unique=(("target",),))
    with_store(db, lambda s: s.write(req))
    with pytest.raises(Conflict):
        with_store(db, lambda s: s.write(req))


def test_updates_follow_inserts_of_the_same_batch_in_arrival_order(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"

    async def body(store: Store) -> None:
        signal = store.write(signal_request())
        flip = store.write(
            Update(
                "signals",
                {"signal_id": 1},
                {"status": "approved"},
                events=(Event("signal_approved", "signals", T0, {}, "1"),),
            )
        )
        await asyncio.gather(signal, flip)

    with_store(db, body)
    conn = duckdb.connect(str(db))
    assert conn.execute("SELECT status FROM signals").fetchall() == [("approved",)]
    kinds = conn.execute("SELECT kind, entity_id FROM events ORDER BY seq").fetchall()
    assert kinds == [("signal_received", "1"), ("signal_approved", "1")]


def test_events_are_landed_and_read_back_with_duckdb_and_polars(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events")

    async def body(store: Store) -> int:
        batch = [
            AppendEvents((Event("tick", "test", T0 + timedelta(seconds=i), {"i": i}),))
            for i in range(300)
        ]
        await asyncio.gather(*(store.write(r) for r in batch))
        landed = await store.export_events(log, 100)
        landed += await store.export_events(log, 10_000)
        assert await store.export_events(log, 10_000) == 0
        return landed

    assert with_store(tmp_path / "t.duckdb", body) == 300
    assert [s.rows for s in log.segments()] == [100, 200]
    got = duckdb.sql(f"SELECT count(*), min(seq), max(seq) FROM ({log.events_sql()})").fetchall()
    assert got == [(300, 1, 300)]
    frame = pl.read_parquet(log.glob)
    assert frame.height == 300
    payload_i = frame.sort("seq").get_column("payload").str.json_path_match("$.i").cast(pl.Int64)
    assert payload_i.to_list() == list(range(300))


def test_reads_run_while_writes_commit(tmp_path: Path) -> None:
    async def body(store: Store) -> int:
        writes = asyncio.gather(*(store.write(audit_request(n=i)) for i in range(200)))
        reads = [store.query("SELECT count(*) AS n FROM audit_log") for _ in range(20)]
        await writes
        counts = [t.column("n")[0].as_py() for t in await asyncio.gather(*reads)]
        assert all(0 <= c <= 200 for c in counts)
        final = await store.query("SELECT count(*) AS n FROM audit_log")
        return int(final.column("n")[0].as_py())

    assert with_store(tmp_path / "t.duckdb", body) == 200


def test_a_bad_query_is_a_typed_rejection(tmp_path: Path) -> None:
    with pytest.raises(Rejected, match="invalid_query"):
        with_store(tmp_path / "t.duckdb", lambda s: s.query("SELECT nope FROM nowhere"))


def test_several_parts_commit_together_and_a_refused_part_leaves_no_trace(
    tmp_path: Path,
) -> None:
    from storage.writes import IdOf, Several

    def audit(target: str) -> Insert:
        row = {"logged_at": T0, "actor": "a", "action": "x", "target": target}
        return Insert("audit_log", (row,), id_column="audit_id", unique=(("target",),))

    async def body(store: Store) -> list[Any]:
        ok = Several((audit("a"), Update("audit_log", {"audit_id": IdOf(0)}, {"actor": "b"})))
        refused = Several((audit("c"), audit("a")))  # the second part is a duplicate
        after = audit("d")
        return await asyncio.gather(
            store.write(ok), store.write(refused), store.write(after), return_exceptions=True
        )

    ok, refused, after = with_store(tmp_path / "t.duckdb", body)
    assert isinstance(refused, Conflict)
    assert ok.ids == (1,) and after.ids == (2,)  # the refused request consumed no id
    conn = duckdb.connect(str(tmp_path / "t.duckdb"))
    rows = conn.execute("SELECT audit_id, actor, target FROM audit_log ORDER BY 1").fetchall()
    assert rows == [(1, "b", "a"), (2, "a", "d")]


def test_dedupe_still_holds_when_memory_keeps_only_part_of_the_keys(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"

    async def fill(store: Store) -> list[WriteResult]:
        return list(
            await asyncio.gather(*(store.write(signal_request(bar_minute=m)) for m in range(10)))
        )

    first = with_store(db, fill, dedupe_keys=4)  # more keys than memory: it trims itself
    again = with_store(db, fill, dedupe_keys=4)  # starts partial: misses go to the database
    assert [r.duplicate_of for r in again] == [r.ids[0] for r in first]
    whole = with_store(db, fill)  # starts complete: every key answered from memory
    assert [r.duplicate_of for r in whole] == [r.ids[0] for r in first]
