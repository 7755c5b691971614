from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Fatal
from storage.eventlog import EVENT_SCHEMA, EventLog, segment_name

T = datetime(2024, 1, 1, tzinfo=UTC)


def events(first: int, last: int) -> pa.Table:
    n = last - first + 1
    return pa.table(
        {
            "seq": list(range(first, last + 1)),
            "event_time": [T] * n,
            "recorded_at": [T] * n,
            "kind": ["k"] * n,
            "stream": ["s"] * n,
            "entity_id": [None] * n,
            "payload": ["{}"] * n,
            "prev_hash": [None] * n,
            "hash": [None] * n,
        },
        schema=EVENT_SCHEMA,
    )


def count(log: EventLog) -> list[tuple[int, int, int]]:
    return duckdb.sql(f"SELECT count(*), min(seq), max(seq) FROM ({log.events_sql()})").fetchall()


def test_landing_is_idempotent_and_refuses_holes(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    assert log.land(events(1, 10)) == tmp_path / segment_name(1, 10)
    assert log.land(events(1, 10)) is None
    assert log.land(events(5, 10)) is None
    with pytest.raises(Fatal, match="do not follow"):
        log.land(events(12, 20))
    with pytest.raises(Fatal, match="non-contiguous"):
        log.land(events(11, 12).take([1, 0]))
    assert log.landed_upto() == 10


def test_temp_files_are_invisible_to_readers_and_removed_by_cleanup(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.land(events(1, 3))
    (tmp_path / (segment_name(4, 9) + ".tmp")).write_bytes(b"PAR1 half a file")
    assert count(log) == [(3, 1, 3)]
    log.cleanup()
    assert sorted(p.name for p in tmp_path.iterdir()) == [segment_name(1, 3)]


@settings(max_examples=100)
@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=25))
def test_compaction_keeps_every_event_exactly_once(sizes: list[int]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        log = EventLog(Path(d))
        first = 1
        for n in sizes:
            log.land(events(first, first + n - 1))
            first += n
        total = first - 1
        log.compact(target_rows=40, min_files=2)
        assert log.landed_upto() == total
        assert count(log) == [(total, 1, total)]
        assert all(s.rows <= 40 or s.rows in sizes for s in log.segments())


def test_a_compaction_cut_short_is_tidied_without_losing_or_doubling(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.land(events(1, 5))
    log.land(events(6, 9))
    # as if a compaction wrote the merged file and died before deleting the small ones
    pa_table = events(1, 9)
    import pyarrow.parquet as pq

    pq.write_table(pa_table, tmp_path / segment_name(1, 9))
    assert count(log) == [(9, 1, 9)]  # the reader query removes the overlap
    log.cleanup()
    assert [s.path.name for s in log.segments()] == [segment_name(1, 9)]
    assert log.landed_upto() == 9


def test_a_hole_in_the_log_is_fatal(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.land(events(1, 5))
    import pyarrow.parquet as pq

    pq.write_table(events(8, 9), tmp_path / segment_name(8, 9))
    with pytest.raises(Fatal, match="event log hole"):
        log.landed_upto()
