"""Engine 1's workers: SignalProcessor → OrderCreator → PaperExecutor, as plain classes.

Each is wrapped as a Ray actor in `actors/system.py` and pushes work to the next at once
(`handle.method.remote(...)`, not awaited: milliseconds from alert to fill). Each step is
idempotent on the state it finds in the Store (a signal not `received` is not processed
twice; an order not `pending_execution` is not filled twice), so a sweep or a retried
message never doubles anything. Domain decisions are the pure functions of `engine/`;
time is the event time carried by the signal or order, or the run's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from actors.metrics import PipelineMetrics
from actors.protection_locks import ProtectionLocks, Protections
from engine.calendar import xnys_calendar
from engine.errors import Conflict, Rejected, Retryable
from engine.events import Event
from engine.exits import ExitRules
from engine.kill_switch import KILL_SWITCH
from engine.kill_switch import REFUSED as KILL_SWITCH_REFUSED
from engine.marketdata import OptionQuote, Right
from engine.orders import PlanConfig, PlannedOrder, plan_exit, plan_signal_order
from engine.positions import Position
from engine.risk import RiskLimits, check_entry
from engine.symbols import SymbolTable
from storage.writes import Insert, Several, Update

log = logging.getLogger(__name__)
LIVE = "live"
LIMITS_TTL = timedelta(seconds=5)

# A position with what its entry order knows (key, contract): the one shape every worker reads.
POSITIONS_SQL = (
    "SELECT p.*, o.idempotency_key, o.option_right, o.strike, o.expiry, o.asset_class, "
    "o.signal_id AS entry_signal_id FROM positions p JOIN orders o ON p.entry_order_id = o.order_id"
)


def planned_from_row(r: dict[str, Any]) -> PlannedOrder:
    return PlannedOrder(
        idempotency_key=r["idempotency_key"],
        client_order_id=r["client_order_id"],
        intent=r["intent"],
        signal_id=r["signal_id"],
        engine=r["engine"],
        symbol=r["symbol"],
        instrument=r["instrument"],
        asset_class=r["asset_class"],
        right=None if r["option_right"] is None else Right(r["option_right"]),
        strike=r["strike"],
        expiry=r["expiry"],
        side=r["side"],
        position_side=r["position_side"],
        quantity=int(r["quantity"]),
        multiplier=int(r["multiplier"]),
        reference_price=r["reference_price"],
        created_at=r["created_at"],
        limit_price=r["limit_price"],
        order_type=r["order_type"],
        reason=r["reason"],
    )


class StoreReader:
    """Rows as dicts from the Store actor (reads run off its commit thread)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._limits: tuple[datetime, RiskLimits] | None = None

    async def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        table = await self.store.query.remote(sql, params)
        return list(table.to_pylist())

    async def one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        found = await self.rows(sql, params)
        return found[0] if found else None

    async def open_position_rows(self, engine: str = LIVE) -> list[dict[str, Any]]:
        sql = f"{POSITIONS_SQL} WHERE p.status = 'open' AND p.engine = ? ORDER BY p.position_id"
        return await self.rows(sql, [engine])

    async def open_positions(self, engine: str = LIVE) -> list[Position]:
        return [position_from_row(r) for r in await self.open_position_rows(engine)]

    async def position_row(self, position_id: int) -> dict[str, Any] | None:
        return await self.one(f"{POSITIONS_SQL} WHERE p.position_id = ?", [position_id])

    async def risk_limits(self, at: datetime | None = None) -> RiskLimits:
        """The `risk_limits` table. With `at` (the event time deciding), a copy read at most
        `LIMITS_TTL` of event time earlier is reused: an admin's change applies within 5 s."""
        if at is not None and self._limits is not None:
            read_at, limits = self._limits
            if read_at <= at < read_at + LIMITS_TTL:
                return limits
        rows = await self.rows("SELECT name, value FROM risk_limits", [])
        limits = RiskLimits.from_rows({r["name"]: r["value"] for r in rows})
        if at is not None:
            self._limits = (at, limits)
        return limits

    async def kill_switch_on(self) -> bool:
        """The kill switch as the Store holds it now: read at every entry, never cached."""
        row = await self.one("SELECT enabled FROM kill_switch WHERE name = ?", [KILL_SWITCH])
        return bool(row is not None and row["enabled"])

    async def exit_rules(self) -> ExitRules:
        rows = await self.rows("SELECT name, value, enabled FROM exit_rules", [])
        return ExitRules.from_rows({r["name"]: (r["value"], r["enabled"]) for r in rows})


def position_from_row(r: dict[str, Any]) -> Position:
    return Position(
        position_key=r["idempotency_key"],
        engine=r["engine"],
        symbol=r["symbol"],
        instrument=r["instrument"],
        asset_class=r["asset_class"],
        side=r["side"],
        quantity=int(r["quantity"]),
        avg_price=float(r["avg_price"]),
        multiplier=int(r["multiplier"]),
        opened_at=r["opened_at"],
        strategy=r["strategy"],
        right=None if r["option_right"] is None else Right(r["option_right"]),
        strike=r["strike"],
        expiry=r["expiry"],
    )


def _decision(signal_id: int, at: datetime, approved: bool, reason: str | None) -> Several:
    decision = "approved" if approved else "rejected"
    event = Event(f"signal_{decision}", "signals", at, {"reason": reason}, str(signal_id))
    row = {"signal_id": signal_id, "decided_at": at, "decision": decision, "reason": reason}
    return Several(
        (
            Insert("refactored_signals", (row,), unique=(("signal_id",),)),
            Update("signals", {"signal_id": signal_id}, {"status": decision}, events=(event,)),
        )
    )


class SignalProcessor:
    """Enrich and risk-check a received signal: approved (→ OrderCreator) or rejected."""

    def __init__(
        self,
        store: Any,
        marketdata: Any,
        order_creator: Any,
        protections: Protections = (),
        *,
        opposite_entry: str = "reject",
        router: Any = None,
    ) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._md = marketdata
        self._orders = order_creator
        self._reverse = opposite_entry == "reverse"
        self._router = router
        self._metrics = PipelineMetrics()
        self._calendar = xnys_calendar()
        self._locks = ProtectionLocks(store, protections, LIVE)

    async def set_router(self, router: Any) -> None:
        """Engine 2's router, once it has started: every signal decided after this goes to it."""
        self._router = router

    async def process(self, signal_id: int) -> str:
        try:
            return await self._process(signal_id)
        except Exception:
            self._metrics.on_error("decide")
            raise

    async def _process(self, signal_id: int) -> str:
        signal = await self._read.one("SELECT * FROM signals WHERE signal_id = ?", [signal_id])
        if signal is None:
            raise Rejected("not_found", f"no signal {signal_id}")
        if signal["status"] != "received":
            return str(signal["status"])  # already decided: a sweep or a repeat
        reason: str | None
        if signal["action"] != "exit" and await self._read.kill_switch_on():
            approved, reason = False, KILL_SWITCH_REFUSED  # exits always go through
        else:
            approved, reason = await self._decide(signal)
        try:
            await self._store.write.remote(
                _decision(signal_id, signal["received_at"], approved, reason)
            )
        except Conflict:
            return "decided"  # another worker decided it first
        self._metrics.on_decision(approved, reason)
        if approved:
            self._orders.create.remote(signal_id, {**signal, "status": "approved"}, reason)
        if self._router is not None:  # Engine 2 shadows every decided signal on its own
            self._router.route.remote(signal_id, signal)
        return "approved" if approved else f"rejected:{reason}"

    async def tick(self, now: datetime) -> int:
        """Sweep: decide signals left `received`, re-push approved ones with no order yet
        (work a crash or a lost message left behind), then record the protection locks
        and unlocks due at `now`. Idempotent."""
        received = await self._read.rows(
            "SELECT signal_id FROM signals WHERE status = 'received' ORDER BY signal_id", []
        )
        for row in received:
            await isolated(self.process(int(row["signal_id"])), "signal", row["signal_id"])
        orphans = await self._read.rows(
            "SELECT s.signal_id FROM signals s WHERE s.status = 'approved' AND NOT EXISTS "
            "(SELECT 1 FROM orders o WHERE o.signal_id = s.signal_id) ORDER BY s.signal_id",
            [],
        )
        for row in orphans:
            self._orders.create.remote(int(row["signal_id"]))
        await self._locks.refresh(now)
        return len(received) + len(orphans)

    async def _decide(self, signal: dict[str, Any]) -> tuple[bool, str | None]:
        positions = await self._read.open_positions()
        mine = [p for p in positions if p.symbol == signal["symbol"]]
        if signal["action"] == "exit":
            return (True, "exit") if mine else (False, "no_open_position")
        opposite = [p for p in mine if p.direction != signal["direction"]]
        if opposite and not self._reverse:
            return False, "opposite_position_open"
        # a reversal closes the opposite position first: the entry is checked without it
        positions = [p for p in positions if p not in opposite]
        at: datetime = signal["received_at"]
        try:
            await self._md.quote.remote(signal["symbol"], at)
        except Rejected as exc:
            return False, f"market_data:{exc.code}"
        except Retryable:
            return False, "market_data:unavailable"
        limits = await self._read.risk_limits(at)
        budget = limits.capital_available * limits.per_trade_risk_pct
        decision = check_entry(
            signal["symbol"],
            positions,
            limits,
            market_open=self._calendar.is_open(at),
            lock=await self._locks.lock_for(signal["symbol"], at),
            capital_needed=budget,
        )
        if decision.approved and opposite:
            return True, "reverse"
        return decision.approved, decision.reason


class OrderCreator:
    """Plan the order for an approved signal (entry, or the exit of its open position)."""

    def __init__(
        self, store: Any, marketdata: Any, tracker: Any, symbols: SymbolTable, plan: PlanConfig
    ) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._md = marketdata
        self._tracker = tracker
        self._symbols = symbols
        self._plan = plan
        self._metrics = PipelineMetrics()

    async def create(
        self,
        signal_id: int,
        signal: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> int | None:
        """The order of an approved signal, inserted once and handed to the tracker.

        The processor's message carries the approved signal row and the decision's reason,
        so nothing is read again; a sweep passes only the id and everything is read. The
        order's unique key keeps a message and a sweep from ever making two orders.

        An entry opposite to an open position (approved, reason `reverse`, only with
        `opposite_entry=reverse`) first closes that position: its exit order (reason
        `reversal`, the position's own exit key, so it is one order with any other exit of
        it) must fill before the entry is planned. Until it has, the signal waits; the
        sweep comes back to it.
        """
        try:
            return await self._create(signal_id, signal, reason)
        except Exception:
            self._metrics.on_error("order")
            raise

    async def _create(
        self, signal_id: int, signal: dict[str, Any] | None, reason: str | None
    ) -> int | None:
        fresh = signal is not None
        if signal is None:
            signal = await self._read.one("SELECT * FROM signals WHERE signal_id = ?", [signal_id])
        if signal is None or signal["status"] != "approved":
            return None
        existing = None
        if not fresh:
            existing = await self._read.one(
                "SELECT order_id FROM orders WHERE signal_id = ? AND intent = ?",
                [signal_id, signal["action"]],
            )
        row: dict[str, Any] | None = None
        if existing is not None:  # never two orders for one signal
            order_id = int(existing["order_id"])
        else:
            reverse = signal["action"] == "entry" and (not fresh or reason == "reverse")
            if reverse and not await self._reverse_first(signal):
                return None
            try:
                order_id, row = await self._plan_and_insert(signal)
            except Conflict:  # a sweep and a message raced, or the position is exiting
                order_id = await self._order_of(signal)
            except Rejected as exc:
                await self._store.write.remote(_order_refused(signal, exc.code))
                return None
        self._tracker.submit.remote(order_id, row, signal["strategy"])
        return order_id

    async def tick(self, now: datetime) -> int:
        """Sweep: hand every order still pending execution to the order tracker again, and
        come back to approved signals whose own order is not there yet (a reversal waiting
        for its exit)."""
        rows = await self._read.rows(
            "SELECT order_id FROM orders WHERE status = 'pending_execution' AND engine = ? "
            "ORDER BY order_id",
            [LIVE],
        )
        for row in rows:
            self._tracker.submit.remote(int(row["order_id"]))
        waiting = await self._read.rows(
            "SELECT s.signal_id FROM signals s WHERE s.status = 'approved' AND EXISTS "
            "(SELECT 1 FROM orders o WHERE o.signal_id = s.signal_id) AND NOT EXISTS "
            "(SELECT 1 FROM orders o WHERE o.signal_id = s.signal_id AND o.intent = s.action) "
            "ORDER BY s.signal_id",
            [],
        )
        for row in waiting:
            await isolated(self.create(int(row["signal_id"])), "signal", row["signal_id"])
        return len(rows) + len(waiting)

    async def _reverse_first(self, signal: dict[str, Any]) -> bool:
        """Close every open position on the signal's symbol opposite to it; True when none
        is left open (nothing to reverse, or the reversal's exits have filled)."""
        rows = await self._read.open_position_rows()
        opposite = [
            r
            for r in rows
            if r["symbol"] == signal["symbol"]
            and position_from_row(r).direction != signal["direction"]
        ]
        if opposite and self._plan.opposite_entry != "reverse":
            raise Rejected("opposite_position_open", signal["symbol"])
        at: datetime = signal["received_at"]
        for row in opposite:
            order = plan_exit(position_from_row(row), at, "reversal")
            try:
                order_id, _ = await self._insert(
                    order, signal["signal_id"], int(row["position_id"])
                )
            except Conflict:  # the position is already exiting: wait for that exit
                order_id = await self._order_id(order.idempotency_key)
            state = await self._tracker.submit.remote(order_id)
            if state != "filled":
                return False
        return True

    async def _order_of(self, signal: dict[str, Any]) -> int:
        found = await self._read.one(
            "SELECT order_id FROM orders WHERE signal_id = ? AND intent = ?",
            [signal["signal_id"], signal["action"]],
        )
        if found is not None:
            return int(found["order_id"])
        # an exit alert for a position that is already exiting: that exit is its order
        rows = await self._read.open_position_rows()
        row = next(r for r in rows if r["symbol"] == signal["symbol"])
        key = plan_exit(position_from_row(row), signal["received_at"], "exit_signal")
        return await self._order_id(key.idempotency_key)

    async def _order_id(self, idempotency_key: str) -> int:
        found = await self._read.one(
            "SELECT order_id FROM orders WHERE idempotency_key = ?", [idempotency_key]
        )
        if found is None:
            raise Rejected("not_found", f"no order {idempotency_key}")
        return int(found["order_id"])

    async def _plan_and_insert(self, signal: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        at: datetime = signal["received_at"]
        if signal["action"] == "exit":
            rows = await self._read.open_position_rows()
            row = next(r for r in rows if r["symbol"] == signal["symbol"])
            order = plan_exit(position_from_row(row), at, "exit_signal")
            position_id: int | None = int(row["position_id"])
        else:
            order, position_id = await self._plan_entry(signal, at), None
        return await self._insert(order, signal["signal_id"], position_id)

    async def _insert(
        self, order: PlannedOrder, signal_id: int, position_id: int | None
    ) -> tuple[int, dict[str, Any]]:
        """Insert the order; its id and its row as stored."""
        row = order_row(order, signal_id, position_id)
        result = await self._store.write.remote(
            Insert(
                "orders",
                (row,),
                id_column="order_id",
                unique=(("idempotency_key",), ("client_order_id",)),
                events=(order_event(order, "order_created"),),
            )
        )
        order_id = int(result.ids[0])
        self._metrics.on_order()
        return order_id, {**row, "order_id": order_id}

    async def _plan_entry(self, signal: dict[str, Any], at: datetime) -> PlannedOrder:
        return await plan_signal_entry(self._md, self._read, self._symbols, self._plan, signal, at)


async def plan_signal_entry(  # noqa: PLR0917
    marketdata: Any,
    read: StoreReader,
    symbols: SymbolTable,
    plan: PlanConfig,
    signal: dict[str, Any],
    at: datetime,
    engine: str = LIVE,
) -> PlannedOrder:
    """The entry order of a signal as of `at`: spot and the listed chain from the MarketData
    actor, sized on the `risk_limits` table. Engine 1 and the shadow engine call this same
    function (`engine` names whose order it is)."""
    symbol = signal["symbol"]
    spot = (await marketdata.quote.remote(symbol, at)).last
    chain: list[OptionQuote] = []
    if plan.instrument_mode == "option":
        chain = await marketdata.option_chain.remote(symbol, None, at)
    limits = await read.risk_limits(at)
    return plan_signal_order(signal, spot, chain, limits, symbols, plan, at, engine)


async def isolated(work: Awaitable[Any], what: str, ident: Any) -> None:
    """Run one item of a sweep; its failure is logged (and counted by the worker) and the
    sweep goes on with the next."""
    try:
        await work
    except Exception:
        log.exception("sweep: %s %s failed; continuing with the rest", what, ident)


def _order_refused(signal: dict[str, Any], code: str) -> Update:
    at = signal["received_at"]
    event = Event("order_refused", "signals", at, {"reason": code}, str(signal["signal_id"]))
    values = {"status": "order_refused"}
    return Update("signals", {"signal_id": signal["signal_id"]}, values, events=(event,))


def order_row(
    order: PlannedOrder, signal_id: int | None, position_id: int | None
) -> dict[str, Any]:
    return {
        "signal_id": signal_id,
        "idempotency_key": order.idempotency_key,
        "client_order_id": order.client_order_id,
        "engine": order.engine,
        "symbol": order.symbol,
        "instrument": order.instrument,
        "asset_class": order.asset_class,
        "option_right": None if order.right is None else str(order.right),
        "strike": order.strike,
        "expiry": order.expiry,
        "side": order.side,
        "quantity": order.quantity,
        "intent": order.intent,
        "position_side": order.position_side,
        "multiplier": order.multiplier,
        "reference_price": order.reference_price,
        "position_id": position_id,
        "order_type": order.order_type,
        "limit_price": order.limit_price,
        "status": "pending_execution",
        "reason": order.reason,
        "attempts": 0,
        "created_at": order.created_at,
        "updated_at": order.created_at,
    }


def order_event(order: PlannedOrder, kind: str) -> Event:
    payload = {k: v for k, v in asdict(order).items() if k != "created_at"}
    return Event(kind, "orders", order.created_at, payload, order.idempotency_key)
