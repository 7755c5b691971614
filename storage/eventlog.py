"""The Parquet event log: contiguous outbox ranges landed as immutable files.

A file is named by the sequence range it holds, `events-<first>-<last>.parquet` (12-digit,
zero-padded, so names sort by range). It is written under a temporary name that no
`*.parquet` glob matches, fsynced, atomically renamed into place, and the directory is
fsynced: a reader never sees a partial file, and a crash leaves at most a temp file that
the next start removes. Landing the same range twice is a no-op.

Compaction merges runs of small adjacent files into one file holding the same rows; the
merged file is renamed into place before the small files are deleted, so a reader racing
a compaction may see a range twice, never lose one. `events_sql()` gives a query that
removes such duplicates by `seq`; it is what the API and the notebook use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import Fatal

_FILE = re.compile(r"^events-(\d{12})-(\d{12})\.parquet$")
_TMP_SUFFIX = ".tmp"

EVENT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("stream", pa.string()),
        ("entity_id", pa.string()),
        ("payload", pa.string()),
        ("prev_hash", pa.string()),
        ("hash", pa.string()),
    ]
)


@dataclass(frozen=True, order=True)
class Segment:
    first: int
    last: int
    path: Path

    @property
    def rows(self) -> int:
        return self.last - self.first + 1


def segment_name(first: int, last: int) -> str:
    return f"events-{first:012d}-{last:012d}.parquet"


class EventLog:
    """The landed event files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def glob(self) -> str:
        return str(self.directory / "events-*.parquet")

    def segments(self) -> list[Segment]:
        out = []
        for path in self.directory.iterdir():
            match = _FILE.match(path.name)
            if match:
                out.append(Segment(int(match.group(1)), int(match.group(2)), path))
        return sorted(out)

    def live_segments(self) -> list[Segment]:
        """Segments not covered by a larger one (left by a compaction cut short)."""
        live: list[Segment] = []
        for seg in sorted(self.segments(), key=lambda s: (s.first, -s.last)):
            if live and seg.last <= live[-1].last:
                continue
            live.append(seg)
        return live

    def landed_upto(self) -> int:
        """The highest `seq` such that 1..seq are all landed; raises on a hole."""
        upto = 0
        for seg in self.live_segments():
            if seg.first != upto + 1:
                raise Fatal(
                    f"event log hole: events {upto + 1}..{seg.first - 1} missing in "
                    f"{self.directory}",
                    "restore the missing files from a backup",
                )
            upto = seg.last
        return upto

    def land(self, table: pa.Table) -> Path | None:
        """Write one contiguous range of events as an immutable file; None if already there."""
        if table.num_rows == 0:
            return None
        table = table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
        seqs = table.column("seq").to_pylist()
        first, last = int(seqs[0]), int(seqs[-1])
        if seqs != list(range(first, last + 1)):
            raise Fatal(f"refusing to land a non-contiguous event range {first}..{last}")
        upto = self.landed_upto()
        if last <= upto:
            return None
        if first != upto + 1:
            raise Fatal(f"events {first}..{last} do not follow the landed range ..{upto}")
        path = self.directory / segment_name(first, last)
        _atomic_write(table, path)
        return path

    def compact(self, target_rows: int = 1_000_000, min_files: int = 4) -> list[Path]:
        """Merge runs of at least `min_files` adjacent small files into files of about
        `target_rows` rows. History is not rewritten: the merged file holds the same rows."""
        self.cleanup()
        written = []
        for run in _runs(self.live_segments(), target_rows):
            if len(run) < min_files:
                continue
            merged = pa.concat_tables([pq.read_table(s.path) for s in run])
            path = self.directory / segment_name(run[0].first, run[-1].last)
            _atomic_write(merged.cast(EVENT_SCHEMA), path)
            for seg in run:
                seg.path.unlink()
            _fsync_dir(self.directory)
            written.append(path)
        return written

    def cleanup(self) -> None:
        """Remove temp files and segments a larger segment already covers."""
        for path in self.directory.iterdir():
            if path.name.endswith(_TMP_SUFFIX):
                path.unlink()
        live = set(self.live_segments())
        for seg in self.segments():
            if seg not in live:
                seg.path.unlink()
        _fsync_dir(self.directory)

    def events_sql(self) -> str:
        """A SELECT over the landed files with any compaction duplicate removed."""
        return events_sql(self.glob)


def events_sql(glob: str) -> str:
    quoted = glob.replace("'", "''")
    return (
        f"SELECT * FROM read_parquet('{quoted}') "
        "QUALIFY row_number() OVER (PARTITION BY seq ORDER BY seq) = 1"
    )


def _runs(segments: list[Segment], target_rows: int) -> list[list[Segment]]:
    runs: list[list[Segment]] = []
    current: list[Segment] = []
    rows = 0
    for seg in segments:
        if seg.rows >= target_rows:
            runs.append(current)
            current, rows = [], 0
            continue
        if rows + seg.rows > target_rows:
            runs.append(current)
            current, rows = [], 0
        current.append(seg)
        rows += seg.rows
    runs.append(current)
    return [r for r in runs if r]


def _atomic_write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
