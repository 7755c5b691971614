"""The SignalProcessor's protections: Freqtrade-style locks over the live engine's closed
positions, kept by `engine.protection_manager` and recorded as events through the Store.

A plain helper the processor owns (no Ray here). At first use it rebuilds the held locks
from the `events` table: per lock (entity `<protection>:<symbol or *>`), the latest event;
when that is a `protection_locked`, the lock is held. So a restarted processor neither
forgets a lock nor records it a second time, and a lock that ran out while no processor
was running gets its `protection_unlocked` at the next refresh. `refresh` runs on the
processor's tick and before every entry decision, so the lock that refuses an entry is
in the event log when the refusal is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.events import Event
from engine.positions import ClosedTrade
from engine.protection_manager import LOCKED, STREAM, ProtectionManager, lock_from_payload
from engine.protections import Lock, Protection, history_minutes

Protections = Sequence[Protection]

# The realised P&L over the cost of everything the entry order opened: Freqtrade's
# close_profit (`engine.positions.closed_trade`), whatever the closed row's quantity says.
CLOSED_TRADES_SQL = (
    "SELECT p.symbol, p.instrument, p.side, p.closed_at, p.realised_pnl, p.exit_reason, "
    "p.avg_price * p.multiplier * coalesce((SELECT sum(t.quantity) FROM trades t "
    "WHERE t.order_id = p.entry_order_id), p.quantity) AS cost_basis "
    "FROM positions p WHERE p.status = 'closed' AND p.engine = ? AND p.closed_at > ? "
    "ORDER BY p.closed_at, p.position_id"
)
LATEST_LOCK_EVENTS_SQL = (
    "SELECT kind, payload FROM events WHERE seq IN "
    "(SELECT max(seq) FROM events WHERE stream = ? GROUP BY entity_id) ORDER BY seq"
)


def closed_trade_from_row(r: dict[str, Any]) -> ClosedTrade:
    """A row of `CLOSED_TRADES_SQL` as the `ClosedTrade` protections read."""
    realised = float(r["realised_pnl"] or 0.0)
    basis = float(r["cost_basis"] or 0.0)
    return ClosedTrade(
        symbol=r["symbol"],
        closed_at=r["closed_at"],
        profit_ratio=realised / basis if basis > 0 else 0.0,
        exit_reason=r["exit_reason"] or "exit",
        realised_pnl=realised,
        instrument=r["instrument"],
        side=r["side"],
    )


class ProtectionLocks:
    """The locks `protections` hold over `engine`'s closed positions in the Store."""

    def __init__(self, store: Any, protections: Protections, engine: str = "live") -> None:
        self._store = store
        self._protections = tuple(protections)
        self._engine = engine
        self._manager: ProtectionManager | None = None
        self._loading: asyncio.Lock | None = None  # made on first use, in the actor's loop

    async def lock_for(self, symbol: str, at: datetime) -> Lock | None:
        """The lock that refuses an entry on `symbol` at `at` (None: no lock applies),
        after recording every lock and unlock due at `at`."""
        manager, trades, _events = await self._refreshed(at)
        return manager.check(trades, at, symbol)

    async def refresh(self, now: datetime) -> int:
        """Record the locks and unlocks due at `now`; how many events that was."""
        return len((await self._refreshed(now))[2])

    async def _refreshed(
        self, now: datetime
    ) -> tuple[ProtectionManager, list[ClosedTrade], list[Event]]:
        manager = await self._held()
        since = now - timedelta(minutes=history_minutes(self._protections))
        rows = await self._rows(CLOSED_TRADES_SQL, [self._engine, since])
        trades = [closed_trade_from_row(r) for r in rows]
        events = manager.refresh(trades, now, {t.symbol for t in trades})
        if events:
            try:
                await self._store.record_events.remote(tuple(events))
            except Exception:
                self._manager = None  # unrecorded locks: rebuild from the Store next time
                raise
        return manager, trades, events

    async def _held(self) -> ProtectionManager:
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._manager is None:
                rows = await self._rows(LATEST_LOCK_EVENTS_SQL, [STREAM])
                names = {p.name for p in self._protections}
                held = [
                    lock
                    for r in rows
                    if r["kind"] == LOCKED
                    and (lock := lock_from_payload(json.loads(r["payload"]))).protection in names
                ]  # only the locks of the protections this processor runs
                self._manager = ProtectionManager(self._protections, held)
            return self._manager

    async def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        table = await self._store.query.remote(sql, params)
        return list(table.to_pylist())
