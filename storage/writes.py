"""Write requests the Store accepts, and how each is planned in memory before it is written.

DuckDB has no savepoints and one failed statement voids the whole transaction, so the
Store decides ids, uniqueness and dedupe here, in arrival order, against its in-memory
state plus what earlier requests of the same batch staged. A plan is a list of row inserts
and update statements; it touches the in-memory state only when its batch commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.errors import Conflict, Rejected
from engine.events import Event
from engine.hashchain import GENESIS, chain_hash

EVENTS_TABLE = "events"
_IDENT_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def check_ident(name: str) -> str:
    """Table and column names are ours, never user input; refuse anything odd anyway."""
    if not name or not set(name) <= _IDENT_OK or name[0].isdigit():
        raise Rejected("invalid_identifier", name)
    return name


@dataclass(frozen=True)
class Insert:
    """Insert rows into `table`. With `id_column`, the Store assigns consecutive ids.

    `unique` lists column tuples that must be unique in the table: checked in memory
    (a `Conflict` for this request alone) before anything is written.
    """

    table: str
    rows: tuple[Mapping[str, Any], ...]
    id_column: str | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Update:
    """Set `values` on the rows of `table` matching `key` (equality on every key column)."""

    table: str
    key: Mapping[str, Any]
    values: Mapping[str, Any]
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class InsertSignal:
    """Insert one signal unless one with the same `dedupe_key` arrived within `window_s`.

    `received_at` is the event time the caller stamped (from its Clock).
    """

    row: Mapping[str, Any]
    dedupe_key: str
    received_at: datetime
    window_s: float = 60.0
    events: tuple[Event, ...] = ()
    duplicate_events: tuple[Event, ...] = ()  # recorded instead when it is a duplicate


@dataclass(frozen=True)
class AppendEvents:
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Several:
    """Several writes that commit together or not at all (one request to the Store).

    Ids assigned by earlier parts can be referenced by later ones: a value
    `IdOf(part_index)` in a later part's row, key or values becomes the first id that
    part was assigned.
    """

    parts: tuple[Insert | Update | AppendEvents, ...]


@dataclass(frozen=True)
class IdOf:
    part: int


@dataclass(frozen=True)
class Noop:
    """Commits nothing; goes through the same queue (for health checks and benchmarks)."""


WriteRequest = Insert | Update | InsertSignal | AppendEvents | Several | Noop


@dataclass(frozen=True)
class WriteResult:
    ids: tuple[int, ...] = ()
    seqs: tuple[int, ...] = ()
    duplicate_of: int | None = None


@dataclass
class Plan:
    inserts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[str, list[Any]]] = field(default_factory=list)
    result: WriteResult = field(default_factory=WriteResult)


Loader = Callable[[str, list[Any]], list[tuple[Any, ...]]]


class StoreState:
    """What the Store knows in memory: last ids, unique keys, recent signals, last seq."""

    def __init__(
        self, load: Loader, last_seq: int, dedupe_keys: int = 1_000_000, last_hash: str = GENESIS
    ) -> None:
        self._load = load
        self.last_hash = last_hash
        self.last_ids: dict[str, int] = {}
        self.keys: dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]] = {}
        self.recent: dict[str, tuple[int, datetime]] = {}
        self.last_seq = last_seq
        self.dedupe_keys = dedupe_keys
        # True while `recent` holds the latest signal of EVERY dedupe key in the database:
        # then a key missing from memory is new, and no query is needed to know it.
        self.complete = False

    def load_recent(self) -> None:
        """At start: the latest signal per dedupe key, newest first, up to the cap."""
        rows = self._load(
            "SELECT dedupe_key, arg_max(signal_id, received_at), max(received_at) "
            "FROM signals GROUP BY dedupe_key ORDER BY 3 DESC LIMIT ?",
            [self.dedupe_keys + 1],
        )
        self.recent = {str(k): (int(i), at) for k, i, at in rows[: self.dedupe_keys]}
        self.complete = len(rows) <= self.dedupe_keys

    def last_id(self, table: str, column: str) -> int:
        if table not in self.last_ids:
            sql = f"SELECT coalesce(max({check_ident(column)}), 0) FROM {check_ident(table)}"
            self.last_ids[table] = int(self._load(sql, [])[0][0])
        return self.last_ids[table]

    def key_set(self, table: str, columns: tuple[str, ...]) -> set[tuple[Any, ...]]:
        slot = (table, columns)
        if slot not in self.keys:
            cols = ", ".join(check_ident(c) for c in columns)
            rows = self._load(f"SELECT {cols} FROM {check_ident(table)}", [])
            self.keys[slot] = {tuple(r) for r in rows}
        return self.keys[slot]

    def recent_signal(self, dedupe_key: str, window_start: datetime) -> int | None:
        hit = self.recent.get(dedupe_key)
        if hit is None and not self.complete:
            rows = self._load(
                "SELECT signal_id, received_at FROM signals WHERE dedupe_key = ? "
                "AND received_at >= ? ORDER BY received_at LIMIT 1",
                [dedupe_key, window_start],
            )
            if rows:
                hit = (int(rows[0][0]), rows[0][1])
                self.recent[dedupe_key] = hit
        return hit[0] if hit is not None and hit[1] >= window_start else None

    def trim(self) -> None:
        """Keep at most `dedupe_keys` keys, dropping the oldest; memory is then partial and
        a miss is looked up in the database."""
        if len(self.recent) <= self.dedupe_keys:
            return
        newest = sorted(self.recent.items(), key=lambda kv: kv[1][1], reverse=True)
        self.recent = dict(newest[: self.dedupe_keys // 2])
        self.complete = False


class Stage:
    """The changes a batch would make to `StoreState`, applied only after it commits."""

    def __init__(self, state: StoreState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.last_ids: dict[str, int] = {}
        self.keys: dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]] = {}
        self.recent: dict[str, tuple[int, datetime]] = {}
        self.last_seq = state.last_seq
        self.last_hash = state.last_hash

    def next_ids(self, table: str, column: str, count: int) -> list[int]:
        start = self.last_ids.get(table, self.state.last_id(table, column))
        self.last_ids[table] = start + count
        return list(range(start + 1, start + count + 1))

    def has_key(self, table: str, columns: tuple[str, ...], value: tuple[Any, ...]) -> bool:
        staged = self.keys.get((table, columns), set())
        return value in staged or value in self.state.key_set(table, columns)

    def add_key(self, table: str, columns: tuple[str, ...], value: tuple[Any, ...]) -> None:
        self.keys.setdefault((table, columns), set()).add(value)

    def snapshot(self) -> tuple[Any, ...]:
        """This batch's additions so far; `restore` undoes a refused request's staging."""
        keys = {slot: set(values) for slot, values in self.keys.items()}
        return dict(self.last_ids), keys, dict(self.recent), self.last_seq, self.last_hash

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        self.last_ids, self.keys, self.recent, self.last_seq, self.last_hash = snapshot

    def apply(self) -> None:
        self.state.last_ids.update(self.last_ids)
        for slot, values in self.keys.items():
            self.state.key_set(*slot).update(values)
        self.state.recent.update(self.recent)
        self.state.last_seq = self.last_seq
        self.state.last_hash = self.last_hash


def plan(request: WriteRequest, stage: Stage) -> Plan:
    """Plan one request against `stage`; raise a `Rejected` for this request alone."""
    if isinstance(request, Insert):
        return _plan_insert(request, stage)
    if isinstance(request, Update):
        return _plan_update(request, stage)
    if isinstance(request, InsertSignal):
        return _plan_signal(request, stage)
    if isinstance(request, AppendEvents):
        out = Plan()
        out.result = WriteResult(seqs=_stage_events(out, request.events, (), stage))
        return out
    if isinstance(request, Noop):
        return Plan()
    if isinstance(request, Several):
        return _plan_several(request, stage)
    raise Rejected("unknown_write", type(request).__name__)


def _resolve(value: Any, ids: list[tuple[int, ...]]) -> Any:
    if isinstance(value, IdOf):
        if value.part >= len(ids) or not ids[value.part]:
            raise Rejected("invalid_write", f"part {value.part} assigned no id")
        return ids[value.part][0]
    return value


def _resolved(part: Insert | Update | AppendEvents, ids: list[tuple[int, ...]]) -> WriteRequest:
    if isinstance(part, Insert):
        rows = tuple({k: _resolve(v, ids) for k, v in r.items()} for r in part.rows)
        return Insert(part.table, rows, part.id_column, part.unique, part.events)
    if isinstance(part, Update):
        key = {k: _resolve(v, ids) for k, v in part.key.items()}
        values = {k: _resolve(v, ids) for k, v in part.values.items()}
        return Update(part.table, key, values, part.events)
    return part


def _plan_several(request: Several, stage: Stage) -> Plan:
    """Plan every part against one stage; the first part that is refused refuses them all
    (the Store rolls the stage back to before this request)."""
    out = Plan()
    ids: list[tuple[int, ...]] = []
    seqs: list[int] = []
    for part in request.parts:
        sub_plan = plan(_resolved(part, ids), stage)
        out.inserts.extend(sub_plan.inserts)
        out.updates.extend(sub_plan.updates)
        ids.append(sub_plan.result.ids)
        seqs.extend(sub_plan.result.seqs)
    out.result = WriteResult(ids=tuple(i for part_ids in ids for i in part_ids), seqs=tuple(seqs))
    return out


def _immutable(table: str) -> str:
    """The event log is append-only: events come only with the write they record."""
    if table == EVENTS_TABLE:
        raise Rejected("immutable_events", "events are appended with their write, never changed")
    return table


def _plan_insert(request: Insert, stage: Stage) -> Plan:
    table = _immutable(check_ident(request.table))
    rows = [dict(r) for r in request.rows]
    for columns in request.unique:
        seen: set[tuple[Any, ...]] = set()
        for row in rows:
            value = tuple(row.get(c) for c in columns)
            if value in seen or stage.has_key(table, columns, value):
                raise Conflict("duplicate_key", {"table": table, "columns": list(columns)})
            seen.add(value)
    ids: list[int] = []
    if request.id_column is not None:
        ids = stage.next_ids(table, request.id_column, len(rows))
        for row, new_id in zip(rows, ids, strict=True):
            row[request.id_column] = new_id
    for columns in request.unique:
        for row in rows:
            stage.add_key(table, columns, tuple(row.get(c) for c in columns))
    out = Plan(inserts=[(table, row) for row in rows])
    seqs = _stage_events(out, request.events, ids, stage)
    out.result = WriteResult(ids=tuple(ids), seqs=seqs)
    return out


def _plan_update(request: Update, stage: Stage) -> Plan:
    if not request.values or not request.key:
        raise Rejected("invalid_update", "an update needs key and values")
    table = _immutable(check_ident(request.table))
    sets = ", ".join(f"{check_ident(c)} = ?" for c in request.values)
    where = " AND ".join(f"{check_ident(c)} = ?" for c in request.key)
    params = [*request.values.values(), *request.key.values()]
    out = Plan(updates=[(f"UPDATE {table} SET {sets} WHERE {where}", params)])
    out.result = WriteResult(seqs=_stage_events(out, request.events, (), stage))
    return out


def _plan_signal(request: InsertSignal, stage: Stage) -> Plan:
    window_start = request.received_at - timedelta(seconds=request.window_s)
    staged = stage.recent.get(request.dedupe_key)
    original = staged[0] if staged is not None and staged[1] >= window_start else None
    if original is None:
        original = stage.state.recent_signal(request.dedupe_key, window_start)
    if original is not None:
        out = Plan()
        seqs = _stage_events(out, request.duplicate_events, [original], stage)
        out.result = WriteResult(seqs=seqs, duplicate_of=original)
        return out
    (signal_id,) = stage.next_ids("signals", "signal_id", 1)
    row = {**request.row, "signal_id": signal_id, "dedupe_key": request.dedupe_key}
    row["received_at"] = request.received_at
    stage.recent[request.dedupe_key] = (signal_id, request.received_at)
    out = Plan(inserts=[("signals", row)])
    out.result = WriteResult(
        ids=(signal_id,), seqs=_stage_events(out, request.events, [signal_id], stage)
    )
    return out


def _stage_events(
    out: Plan, events: Sequence[Event], ids: Sequence[int], stage: Stage
) -> tuple[int, ...]:
    seqs = []
    for event in events:
        stage.last_seq += 1
        entity = event.entity_id
        if entity is None and len(ids) == 1:
            entity = str(ids[0])
        row = event_row(event, stage.last_seq, stage.now, entity)
        row["prev_hash"] = stage.last_hash
        row["hash"] = stage.last_hash = chain_hash(stage.last_hash, row)
        out.inserts.append((EVENTS_TABLE, row))
        seqs.append(stage.last_seq)
    return tuple(seqs)


def event_row(event: Event, seq: int, recorded_at: datetime, entity: str | None) -> dict[str, Any]:
    return {
        "seq": seq,
        "event_time": event.event_time,
        "recorded_at": recorded_at,
        "kind": event.kind,
        "stream": event.stream,
        "entity_id": entity,
        "payload": json.dumps(dict(event.payload), sort_keys=True, default=str),
    }
