"""The event log's hash chain: each event's hash covers the previous event's hash and its own
content, in sequence order, so changing, removing or reordering any landed event breaks
every hash after it.

    hash(n) = SHA-256( hash(n-1) + "\\n" + canonical(event n) )      hash(0) = GENESIS

`canonical` is the JSON of the event's fields that the Store writes (seq, event_time,
recorded_at, kind, stream, entity_id, payload text) with sorted keys. `verify` walks a
sequence of rows and reports the first that does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "event_time", "recorded_at", "kind", "stream", "entity_id", "payload")


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def canonical(row: Mapping[str, Any]) -> str:
    return json.dumps({f: _text(row[f]) for f in FIELDS}, sort_keys=True, separators=(",", ":"))


def chain_hash(prev: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(f"{prev}\n{canonical(row)}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """`ok` when every row's prev_hash and hash match; else the first seq that does not."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(rows: Iterable[Mapping[str, Any]], prev: str | None = None) -> ChainReport:
    """Check rows in seq order. `prev` is the hash before the first row (None: take the
    first row's own prev_hash, so a log that starts after compaction or a cut still checks).
    Rows written before the chain existed (hash NULL) are skipped until the first hashed row.
    """
    checked = 0
    expected_seq: int | None = None
    for row in rows:
        if row.get("hash") is None and prev is None:
            continue
        seq = int(row["seq"])
        if expected_seq is not None and seq != expected_seq:
            return ChainReport(False, checked, seq, f"seq {seq} follows {expected_seq - 1}")
        link = row.get("prev_hash")
        if prev is not None and link != prev:
            return ChainReport(False, checked, seq, "prev_hash is not the previous event's hash")
        if row.get("hash") != chain_hash(str(link), row):
            return ChainReport(False, checked, seq, "hash does not match the event's content")
        prev = str(row["hash"])
        expected_seq = seq + 1
        checked += 1
    return ChainReport(True, checked)
