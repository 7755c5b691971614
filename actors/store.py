"""StoreActor: owns the Store (the only read-write DuckDB connection) and the event exporter.

A plain class; `actors/system.py` wraps it with `ray.remote`. It starts on its first call
(so a restarted actor reopens the database by itself) and lands committed outbox events
as Parquet every `export_interval_s` of its clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from actors.metrics import KillSwitchMetrics, StoreMetrics
from engine.clock import Clock, LiveClock
from engine.errors import Fatal, NotFound, Rejected
from engine.events import Event
from engine.exits import ExitRules
from engine.flags import ExperimentSettings, FeatureFlags
from engine.intake import SignalDraft
from engine.kill_switch import KillSwitch
from engine.read_models import ListQuery
from engine.risk import RiskLimits
from storage.eventlog import EventLog
from storage.queries import list_sql, signal_trail_sql
from storage.store import Store
from storage.writes import (
    AppendEvents,
    Insert,
    InsertSignal,
    Noop,
    Several,
    Update,
    WriteRequest,
    WriteResult,
)

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
        self._kill_switch = KillSwitchMetrics()
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
                await self._report_kill_switch()
        return await self.health()

    async def _report_kill_switch(self) -> None:
        """The gauge at start (straight to the store: `start` holds its lock here)."""
        table = await self._store.query("SELECT enabled FROM kill_switch", ())
        self._kill_switch.set(any(bool(v) for v in table.column("enabled").to_pylist()))

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

    # -- admin settings: risk limits, exit rules, feature flags, experiment settings ----

    _settings_lock: asyncio.Lock | None = None  # made on first use, in the actor's loop

    async def settings(self, table: str) -> list[dict[str, Any]]:
        """The rows of one admin settings table (`_SETTINGS`; any other is `Rejected`), by
        name: `risk_limits`, `exit_rules`, `feature_flags`, `experiment_settings` or
        `kill_switch`."""
        spec = _settings_spec(table)
        return list((await self.query(f"SELECT * FROM {spec.table} ORDER BY name")).to_pylist())

    async def update_settings(
        self, table: str, changes: dict[str, dict[str, Any]], actor: str, at: datetime
    ) -> list[dict[str, Any]]:
        """Apply an admin's `changes` (name → {column: value}) and audit them.

        `table` is one of `_SETTINGS`; a change sets some of its columns: "value" for
        risk limits and experiment settings, "value" and "enabled" for exit rules,
        "enabled" and "whitelist" (a list of symbols; empty: all) for feature flags. The
        changes are merged into the current rows and the engine object (`RiskLimits`,
        `ExitRules`, `FeatureFlags`, `ExperimentSettings`) is built from the result: an
        unknown name, a wrongly typed column or an impossible value is
        `Rejected("invalid_payload", [{"field": name, "problem": text}])` and nothing is
        written. Otherwise ONE transaction sets the changed rows (updated_by=`actor`,
        updated_at=`at`) and adds, per name whose columns changed, an
        `audit_log` row (old and new as JSON text) and an event on the "audit" stream.
        Changes run one at a time, so each audit row's old value is what it replaced.
        Returns the fresh rows.
        """
        spec = _settings_spec(table)
        if self._settings_lock is None:
            self._settings_lock = asyncio.Lock()
        async with self._settings_lock:
            current = {row["name"]: row for row in await self.settings(table)}
            merged = _merge_settings(spec, current, changes)
            writes = _settings_writes(spec, current, merged, actor, at)
            if writes is not None:
                await self.write(writes)
            fresh = await self.settings(table)
            if spec.table == "kill_switch":
                self._kill_switch.set(any(bool(r["enabled"]) for r in fresh))
            return fresh


@dataclass(frozen=True)
class _Column:
    """A column a change may set: what is wrong with a value's type (None: nothing), how
    the row stores it, and its value in the row checked for a name with no row."""

    problem: Callable[[Any], str | None]
    stored: Callable[[Any], Any]
    blank: Any


def _symbols(value: Any) -> list[str] | None:
    """A whitelist as stored: sorted upper-case symbols, or NULL for "all symbols"."""
    return sorted({str(s).strip().upper() for s in value}) if value else None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "value must be a number"
    return None


def _bool_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) else "enabled must be true or false"


def _symbols_problem(value: Any) -> str | None:
    """A list of texts (the engine judges each symbol) or null; an empty list is "all"."""
    if value is None or (isinstance(value, list) and all(isinstance(s, str) for s in value)):
        return None
    return "whitelist must be a list of symbols"


_VALUE = _Column(_number_problem, float, 0.0)
_ENABLED = _Column(_bool_problem, bool, True)
_WHITELIST = _Column(_symbols_problem, _symbols, None)


@dataclass(frozen=True)
class _SettingsTable:
    """How one admin-editable table is checked and audited."""

    table: str
    columns: Mapping[str, _Column]  # what a change may set
    action: str  # audit_log.action
    event_kind: str
    check: Callable[[Mapping[str, Mapping[str, Any]]], object]  # raises on a bad table


_SETTINGS = {
    "risk_limits": _SettingsTable(
        "risk_limits",
        {"value": _VALUE},
        "update_risk_limit",
        "risk_limit_updated",
        lambda rows: RiskLimits.from_rows({n: r["value"] for n, r in rows.items()}),
    ),
    "exit_rules": _SettingsTable(
        "exit_rules",
        {"value": _VALUE, "enabled": _ENABLED},
        "update_exit_rule",
        "exit_rule_updated",
        lambda rows: ExitRules.from_rows({n: (r["value"], r["enabled"]) for n, r in rows.items()}),
    ),
    "feature_flags": _SettingsTable(
        "feature_flags",
        {"enabled": _ENABLED, "whitelist": _WHITELIST},
        "update_feature_flag",
        "feature_flag_updated",
        lambda rows: FeatureFlags.from_rows(
            {n: (r["enabled"], r["whitelist"]) for n, r in rows.items()}
        ),
    ),
    "experiment_settings": _SettingsTable(
        "experiment_settings",
        {"value": _VALUE},
        "update_experiment_setting",
        "experiment_setting_updated",
        lambda rows: ExperimentSettings.from_rows({n: r["value"] for n, r in rows.items()}),
    ),
    "kill_switch": _SettingsTable(
        "kill_switch",
        {"enabled": _ENABLED},
        "update_kill_switch",
        "kill_switch_updated",
        lambda rows: KillSwitch.from_rows({n: r["enabled"] for n, r in rows.items()}),
    ),
}


def _settings_spec(table: str) -> _SettingsTable:
    spec = _SETTINGS.get(table)
    if spec is None:
        raise Rejected("invalid_table", f"{table!r} is not one of {sorted(_SETTINGS)}")
    return spec


def _change_problem(spec: _SettingsTable, change: Any) -> str | None:
    """What is wrong with one change's shape (the engine judges the values)."""
    if not isinstance(change, Mapping) or not change:
        return f"a change is an object with some of {list(spec.columns)}"
    extra = sorted(set(change) - set(spec.columns))
    if extra:
        return f"unknown keys {extra}; a change may set {list(spec.columns)}"
    problems = (spec.columns[c].problem(v) for c, v in change.items())
    return next((p for p in problems if p is not None), None)


def _engine_problem(spec: _SettingsTable, rows: Mapping[str, Mapping[str, Any]]) -> str | None:
    try:
        spec.check(rows)
    except (Fatal, ValueError, TypeError, OverflowError) as exc:
        return str(exc)
    return None


def _name_problem(
    spec: _SettingsTable,
    current: Mapping[str, Mapping[str, Any]],
    merged: Mapping[str, Mapping[str, Any]],
    name: str,
    change: Any,
) -> str | None:
    """What is wrong with changing `name` alone (on top of the changes before it)."""
    problem = _change_problem(spec, change)
    if problem is None:
        blank = {c: column.blank for c, column in spec.columns.items()}
        row = {**blank, **current.get(name, {}), **change}
        problem = _engine_problem(spec, {**merged, name: row})
    if problem is None and name not in current:
        problem = f"no {spec.table} row named {name!r}"
    return problem


def _merge_settings(
    spec: _SettingsTable, current: Mapping[str, Mapping[str, Any]], changes: Any
) -> dict[str, dict[str, Any]]:
    """The current rows with `changes` applied, or `Rejected` listing every bad name."""
    if not isinstance(changes, Mapping) or not changes:
        raise Rejected("invalid_payload", [{"field": "body", "problem": "no changes given"}])
    merged = {name: dict(row) for name, row in current.items()}
    problems = []
    for name, change in changes.items():
        problem = _name_problem(spec, current, merged, str(name), change)
        if problem is not None:
            problems.append({"field": str(name), "problem": problem})
        else:
            merged[name].update({k: spec.columns[k].stored(v) for k, v in change.items()})
    if not problems and (problem := _engine_problem(spec, merged)) is not None:
        problems.append({"field": "body", "problem": problem})
    if problems:
        raise Rejected("invalid_payload", problems)
    return merged


def _audited(spec: _SettingsTable, row: Mapping[str, Any]) -> Any:
    """What the audit log records of a row: its one column's value, or each column's."""
    if len(spec.columns) == 1:
        return row[next(iter(spec.columns))]
    return {column: row[column] for column in spec.columns}


def _settings_writes(
    spec: _SettingsTable,
    current: Mapping[str, Mapping[str, Any]],
    merged: Mapping[str, Mapping[str, Any]],
    actor: str,
    at: datetime,
) -> Several | None:
    """Row updates plus audit rows and events for the names that changed (None: none did)."""
    changed = [n for n in sorted(merged) if _audited(spec, merged[n]) != _audited(spec, current[n])]
    if not changed:
        return None
    updates = tuple(
        Update(
            spec.table,
            {"name": name},
            {**{c: merged[name][c] for c in spec.columns}, "updated_by": actor, "updated_at": at},
        )
        for name in changed
    )
    entries = [
        {
            "actor": actor,
            "action": spec.action,
            "target": name,
            "old_value": _audited(spec, current[name]),
            "new_value": _audited(spec, merged[name]),
        }
        for name in changed
    ]
    audit_rows = tuple(
        {
            **e,
            "logged_at": at,
            "old_value": json.dumps(e["old_value"]),
            "new_value": json.dumps(e["new_value"]),
        }
        for e in entries
    )
    events = tuple(
        Event(spec.event_kind, "audit", at, payload=e, entity_id=e["target"]) for e in entries
    )
    return Several((*updates, Insert("audit_log", audit_rows, id_column="audit_id", events=events)))
