"""Kill a real writer process mid-append: no partial file, no acknowledged event lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from engine.clock import LiveClock
from storage.eventlog import EventLog
from storage.store import Store

ROOT = Path(__file__).resolve().parents[2]


def run_until_killed(db: Path, events: Path, kill_on_tmp: bool, min_acks: int) -> set[int]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/e2e/crash_writer.py"), str(db), str(events)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    acked: set[int] = set()
    try:
        while len(acked) < min_acks:
            line = proc.stdout.readline()
            assert line, "writer died before it was killed"
            acked.add(int(line))
        deadline = time.monotonic() + 20
        while kill_on_tmp and time.monotonic() < deadline:
            if events.exists() and any(p.suffix == ".tmp" for p in events.iterdir()):
                break
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # lines flushed before the kill were acknowledged too; a cut-off last line was not
    for line in rest.splitlines():
        if line.strip().isdigit():
            acked.add(int(line))
    return acked


@pytest.mark.parametrize(
    ("kill_on_tmp", "min_acks"), [(True, 50), (True, 400), (False, 123), (False, 999)]
)
def test_kill_mid_append_leaves_no_partial_file_and_loses_nothing(
    tmp_path: Path, kill_on_tmp: bool, min_acks: int
) -> None:
    db, events = tmp_path / "t.duckdb", tmp_path / "events"
    acked = run_until_killed(db, events, kill_on_tmp, min_acks)
    log = EventLog(events)
    for seg in log.segments():  # every visible file is whole and holds exactly its range
        seqs = pq.read_table(seg.path).column("seq").to_pylist()
        assert seqs == list(range(seg.first, seg.last + 1))
    log.landed_upto()  # no hole among the landed files

    async def recover() -> None:
        store = Store(db, LiveClock())
        await store.start()
        log.cleanup()
        while await store.export_events(log, 10_000):
            pass
        await store.close()

    asyncio.run(recover())
    assert not [p for p in events.iterdir() if p.suffix == ".tmp"]
    landed = {r[0] for r in duckdb.sql(f"SELECT seq FROM ({log.events_sql()})").fetchall()}
    assert acked <= landed
    assert landed == set(range(1, max(landed) + 1))
