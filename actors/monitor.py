"""PositionMonitor: on every tick, mark open positions to market and exit them by rule.

A plain class; `actors/system.py` wraps it with `ray.remote` and a `Ticker` sends it
`tick(now)`. One tick is two steps:

- `refresh`: the mark of every open live position (an option at its quote's mid, shares
  at the last price) as of `now`, and its unrealised P&L (`engine.positions.mark`), all
  written in ONE Store request with one `positions_marked` event for the tick;
- `check_exits`: `engine.exits.exit_reason` with the `exit_rules` table and the session
  close (when `now` is in regular hours); each position to close gets the order
  `engine.orders.plan_exit` plans, inserted as OrderCreator inserts its orders and handed
  to the PaperExecutor, which closes the position with the rule as its `exit_reason`.

Idempotent: an exit order's key is the position's key + `/exit` (+ `/<n>` after n failed
exits), so two ticks that decide the same exit make one order (the Store answers the
second with a `Conflict`: already exiting); a position with an exit order still pending
is not checked. A failure on one position is logged and counted; the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.metrics import MonitorMetrics
from actors.pipeline import LIVE, StoreReader, order_event, order_row, position_from_row
from engine.calendar import session_close_at, xnys_calendar
from engine.clock import ensure_utc
from engine.errors import Conflict
from engine.events import Event
from engine.exits import ExitRules, exit_reason
from engine.marketdata import OptionQuote, Quote
from engine.orders import PlannedOrder, plan_exit
from engine.positions import MarkedPosition, Position, mark
from storage.writes import AppendEvents, Insert, Several, Update

log = logging.getLogger(__name__)

OPEN_POSITIONS_SQL = """
SELECT p.*, o.idempotency_key, o.option_right, o.strike, o.expiry, o.asset_class,
    (SELECT count(*) FROM orders x WHERE x.position_id = p.position_id
        AND x.intent = 'exit'
        AND x.status IN ('pending_execution', 'submitted', 'partially_filled')) AS exits_pending,
    (SELECT count(*) FROM orders x WHERE x.position_id = p.position_id
        AND x.intent = 'exit' AND x.status IN ('failed', 'rejected', 'lost')) AS exits_failed
FROM positions p JOIN orders o ON p.entry_order_id = o.order_id
WHERE p.status = 'open' AND p.engine = ? ORDER BY p.position_id
"""


@dataclass(frozen=True, slots=True)
class Held:
    """An open position as the monitor reads it: its row id and its exit orders so far."""

    position_id: int
    position: Position
    exit_pending: bool = False
    failed_exits: int = 0


Marked = tuple[Held, MarkedPosition]


def held_from_row(r: dict[str, Any]) -> Held:
    """A row of `OPEN_POSITIONS_SQL` as a `Held`."""
    return Held(
        position_id=int(r["position_id"]),
        position=position_from_row(r),
        exit_pending=int(r["exits_pending"]) > 0,
        failed_exits=int(r["exits_failed"]),
    )


def mark_price(quote: Quote | OptionQuote) -> float:
    """An option is marked at its quote's mid, shares at the last price."""
    return quote.mid if isinstance(quote, OptionQuote) else quote.last


def marks_write(marked: Sequence[Marked], now: datetime) -> Several:
    """One Store request: each position's mark, and one `positions_marked` event.

    The update matches the row only while it is still open, so a mark read before an
    exit filled never overwrites the closing mark.
    """
    parts: list[Insert | Update | AppendEvents] = [
        Update(
            "positions",
            {"position_id": held.position_id, "status": "open"},
            {"mark": m.mark, "marked_at": m.marked_at, "unrealised_pnl": m.unrealised_pnl},
        )
        for held, m in marked
    ]
    payload = {
        "positions": [
            {"position_id": held.position_id, "mark": m.mark, "unrealised_pnl": m.unrealised_pnl}
            for held, m in marked
        ]
    }
    parts.append(AppendEvents((Event("positions_marked", "positions", now, payload),)))
    return Several(tuple(parts))


def exits_due(
    marked: Sequence[Marked], now: datetime, session_close: datetime | None, rules: ExitRules
) -> list[tuple[Held, PlannedOrder]]:
    """The exit order of every marked position a rule closes now (none while one is pending).

    After n failed exits the order is attempt n, so it gets a key of its own.
    """
    due = []
    for held, m in marked:
        if held.exit_pending:
            continue
        reason = exit_reason(m, now, held.position.expiry, session_close, rules)
        if reason is not None:
            order = plan_exit(
                held.position, now, reason, reference_price=m.mark, attempt=held.failed_exits
            )
            due.append((held, order))
    return due


class PositionMonitor:
    """Marks and exit checks for Engine 1's open positions, one `tick(now)` at a time."""

    def __init__(self, store: Any, marketdata: Any, tracker: Any) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._md = marketdata
        self._tracker = tracker
        self._calendar = xnys_calendar()
        self._metrics = MonitorMetrics()

    async def tick(self, now: datetime) -> dict[str, int]:
        """Mark every open live position as of `now`, then exit those a rule closes."""
        at = ensure_utc(now)
        rows = await self._read.rows(OPEN_POSITIONS_SQL, [LIVE])
        held = [held_from_row(r) for r in rows]
        marked, mark_errors = await self.refresh(held, at)
        exits, exit_errors = await self.check_exits(marked, at)
        summary = {"marked": len(marked), "exits": exits, "errors": mark_errors + exit_errors}
        self._metrics.on_tick(summary["marked"], summary["errors"])
        return summary

    async def refresh(self, held: Sequence[Held], now: datetime) -> tuple[list[Marked], int]:
        """Mark each position (quotes fetched together) and write the marks in one request.

        Returns the marked positions and how many could not be marked or written.
        """
        quotes = await asyncio.gather(
            *(self._quote(h.position, now) for h in held), return_exceptions=True
        )
        marked: list[Marked] = []
        errors = 0
        for h, quote in zip(held, quotes, strict=True):
            try:
                if isinstance(quote, BaseException):
                    raise quote
                marked.append((h, mark(h.position, mark_price(quote), now)))
            except Exception as exc:  # one position's quote or mark; the others go on
                log.warning("cannot mark position %s: %r", h.position_id, exc)
                errors += 1
        if marked:
            try:
                await self._store.write.remote(marks_write(marked, now))
            except Exception:
                log.warning("cannot write %d marks", len(marked), exc_info=True)
                errors += 1
        return marked, errors

    async def check_exits(self, marked: Sequence[Marked], now: datetime) -> tuple[int, int]:
        """Plan, insert and hand to the order tracker every exit due; returns (exits, errors)."""
        if not marked:
            return 0, 0
        rules = await self._read.exit_rules()
        due = exits_due(marked, now, session_close_at(self._calendar, now), rules)
        outcomes = await asyncio.gather(
            *(self._exit(h, order) for h, order in due), return_exceptions=True
        )
        exits = errors = 0
        for (h, order), outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("cannot exit position %s: %r", h.position_id, outcome)
                errors += 1
            elif outcome:
                exits += 1
                self._metrics.on_exit(str(order.reason))
        return exits, errors

    async def _quote(self, position: Position, now: datetime) -> Quote | OptionQuote:
        contract = position.contract
        if contract is not None:
            option: OptionQuote = await self._md.option_quote.remote(contract, now)
            return option
        quote: Quote = await self._md.quote.remote(position.symbol, now)
        return quote

    async def _exit(self, held: Held, order: PlannedOrder) -> bool:
        """Insert the exit order and send it to the order tracker; False if it already exists."""
        try:
            result = await self._store.write.remote(
                Insert(
                    "orders",
                    (order_row(order, None, held.position_id),),
                    id_column="order_id",
                    unique=(("idempotency_key",), ("client_order_id",)),
                    events=(order_event(order, "order_created"),),
                )
            )
        except Conflict:
            return False  # another tick planned this exit first: already exiting
        self._tracker.submit.remote(int(result.ids[0]))
        return True
