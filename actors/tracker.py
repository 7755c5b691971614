"""OrderTracker: every order goes to the broker through here, and every answer comes back here.

- `submit(order_id)`: register the order (`submitted`, durable) *before* it is sent, then
  send it through the broker port and apply the answer. Rules in `engine.order_tracker`:
  a definitive refusal → `rejected`; a failure that never reached the venue → `failed`;
  an ambiguous one → looked up by client order id up to 3 times (1 s, 2 s back-off on the
  run's clock), then `lost`, which a late answer still moves on.
- `on_update(answer)`: an answer the broker pushed (a fill from a user stream).
- Applying an answer records the fills we have not seen (one trade per broker fill id),
  opens, grows, reduces or closes the position, and moves the order's state: all in one
  Store transaction, with their events.
- `reconcile()`, at start-up and on `tick`: our in-flight orders against the broker's open
  orders and positions; every difference is an event and a metric, and an order the
  broker no longer holds open is looked up.

One order is handled by one coroutine at a time (a lock per order), so a sweep never
races a submit or a stream message in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from actors.clock import ClockLink
from actors.metrics import counter
from actors.pipeline import (
    LIVE,
    POSITIONS_SQL,
    StoreReader,
    isolated,
    planned_from_row,
    position_from_row,
)
from engine.broker import Ambiguous, Broker, BrokerFill, BrokerOrder
from engine.errors import Conflict, Rejected, Retryable
from engine.events import Event
from engine.fills import Fill
from engine.order_tracker import (
    IN_FLIGHT,
    MAX_LOOKUPS,
    Difference,
    TrackedOrder,
    after_lookup,
    can_move,
    missing_fill,
    reconcile_orders,
    reconcile_positions,
    state_of,
    within,
)
from engine.orders import PlannedOrder
from engine.positions import apply_fill
from engine.retry import backoff_delay
from storage.writes import IdOf, Insert, Several, Update

log = logging.getLogger(__name__)

IN_FLIGHT_SQL = (
    "SELECT o.order_id, o.client_order_id, o.status, "
    "coalesce((SELECT sum(t.quantity) FROM trades t WHERE t.order_id = o.order_id), 0) AS filled "
    "FROM orders o WHERE o.engine = ? AND o.status IN ('submitted', 'partially_filled', 'lost') "
    "ORDER BY o.order_id"
)


class TrackerMetrics:
    def __init__(self) -> None:
        self._outcomes = counter("orders_total", "orders by the state they reached", ["state"])
        self._differences = counter(
            "reconciliation_differences_total", "differences with the broker's book", ["kind"]
        )
        self._lookups = counter("order_lookups_total", "orders looked up by client order id")

    def on_state(self, state: str) -> None:
        self._outcomes.inc(1, tags={"state": state})

    def on_difference(self, kind: str) -> None:
        self._differences.inc(1, tags={"kind": kind})

    def on_lookup(self) -> None:
        self._lookups.inc(1)


class OrderTracker:
    def __init__(self, store: Any, broker: Broker, clock: ClockLink, engine: str = LIVE) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._broker = broker
        self._clock = clock
        self._engine = engine
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._sent: set[int] = set()  # registered by this process
        self._metrics = TrackerMetrics()

    # --- orders out ----------------------------------------------------------------------

    async def submit(
        self, order_id: int, row: dict[str, Any] | None = None, strategy: str | None = None
    ) -> str:
        """Register and send a `pending_execution` order; its state afterwards.

        The creator's message carries the order's row (and its signal's strategy) as it
        inserted it, so the first submit reads nothing; a sweep or a repeat reads the row.
        """
        async with self._locks[order_id]:
            fresh = row is not None and order_id not in self._sent
            if row is None or not fresh:
                row = await self._order(order_id)
            if row["status"] != "pending_execution":
                return str(row["status"])  # sent already: never twice
            if row["intent"] == "exit":
                position = await self._read.position_row(int(row["position_id"]))
                if position is None or position["status"] != "open":
                    return await self._move(row, "rejected", "no_open_position")
            at = await self._clock.now()
            registered = _state_update(row, "submitted", None, at, "order_submitted")
            await self._store.write.remote(Several((registered,)))
            self._sent.add(order_id)
            row = {**row, "status": "submitted"}
            return await self._send(row, planned_from_row(row), fresh, strategy)

    async def _send(
        self, row: dict[str, Any], order: PlannedOrder, fresh: bool, strategy: str | None
    ) -> str:
        try:
            answer = await self._broker.submit(order)
        except Ambiguous as exc:
            log.warning("submit of %s ambiguous (%s): looking it up", order.client_order_id, exc)
            return await self._look_up(row)
        except Rejected as exc:
            return await self._move(row, "rejected", exc.code)
        except Retryable as exc:
            return await self._move(row, "failed", exc.message)
        return await self._apply(row, answer, fresh=fresh, strategy=strategy)

    async def _look_up(self, row: dict[str, Any]) -> str:
        """An ambiguous order: look it up until found, or lost after `MAX_LOOKUPS`."""
        for n in range(1, MAX_LOOKUPS + 1):
            self._metrics.on_lookup()
            try:
                found = await self._broker.lookup(row["client_order_id"])
            except Retryable:
                found = None
            verdict = after_lookup(found, n)
            if verdict == "found" and found is not None:
                return await self._apply(row, found)
            if verdict == "lost":
                break
            await self._clock.sleep(backoff_delay(n, 1.0, 30.0))
        return await self._move(row, "lost", f"not found after {MAX_LOOKUPS} look-ups")

    # --- answers in -----------------------------------------------------------------------

    async def on_update(self, answer: BrokerOrder) -> str:
        """An answer the broker pushed; unknown client order ids are recorded as events."""
        row = await self._read.one(
            "SELECT * FROM orders WHERE client_order_id = ?", [answer.client_order_id]
        )
        if row is None:
            await self._differences(
                [Difference("external_order", answer.client_order_id, None, answer.status)],
                await self._clock.now(),
            )
            return "external"
        async with self._locks[int(row["order_id"])]:
            return await self._apply(await self._order(int(row["order_id"])), answer)

    async def _apply(
        self,
        row: dict[str, Any],
        answer: BrokerOrder,
        *,
        fresh: bool = False,
        strategy: str | None = None,
    ) -> str:
        """Record the answer's unseen fills, the position change and the order's new state.

        `fresh`: the answer to the submit this coroutine just registered, under the order's
        lock, so no fill and no position of this order can be recorded yet.
        """
        order = planned_from_row(row)
        seen: list[dict[str, Any]] = []
        if not fresh:
            seen = await self._read.rows(
                "SELECT fill_id, quantity, price FROM trades WHERE order_id = ?",
                [row["order_id"]],
            )
        seen_ids = {r["fill_id"] for r in seen}
        fills = within(
            [f for f in answer.fills if f.fill_id not in seen_ids],
            answer.filled_quantity - sum(int(r["quantity"]) for r in seen),
        )
        recorded = sum(int(r["quantity"]) for r in seen) + sum(f.quantity for f in fills)
        notional = sum(float(r["quantity"]) * float(r["price"]) for r in seen) + sum(
            f.quantity * f.price for f in fills
        )
        gap = missing_fill(answer, recorded, notional)
        if gap is not None and gap.fill_id not in seen_ids:
            fills.append(gap)
        state = state_of(answer)
        if not fills and (state == row["status"] or not can_move(row["status"], state)):
            return str(row["status"])
        parts: list[Insert | Update] = []
        position = None
        if not fresh or row["intent"] == "exit":
            position = await self._position_before(row)
        for bf in fills:
            fill = _as_fill(order, bf)
            parts.append(_trade(row, bf))
            change, position = await self._position_change(
                row, order, fill, position, part=len(parts), strategy=strategy
            )
            parts.append(change)
        at = answer.updated_at
        if can_move(row["status"], state) and state != row["status"]:
            extra = {"price": answer.filled_avg_price, "filled": answer.filled_quantity}
            parts.append(_state_update(row, state, answer.reason, at, f"order_{state}", extra))
        try:
            await self._store.write.remote(Several(tuple(parts)))
        except Conflict:
            return str((await self._order(int(row["order_id"])))["status"])
        self._metrics.on_state(state)
        return state

    async def _position_before(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["intent"] == "exit":
            return await self._read.position_row(int(row["position_id"]))
        return await self._read.one(
            f"{POSITIONS_SQL} WHERE p.entry_order_id = ?", [row["order_id"]]
        )

    async def _position_change(
        self,
        row: dict[str, Any],
        order: PlannedOrder,
        fill: Fill,
        position: dict[str, Any] | None,
        *,
        part: int,
        strategy: str | None = None,
    ) -> tuple[Insert | Update, dict[str, Any] | None]:
        """The write for one fill (part `part` of the transaction) and the position row as
        it stands after it. A position opened earlier in the same transaction is named by
        `IdOf` that insert."""
        if position is None or position["status"] != "open":
            if row["intent"] == "exit":
                raise Rejected("no_open_position", f"position {row['position_id']}")
            if strategy is None and row["signal_id"] is not None:
                signal = await self._read.one(
                    "SELECT strategy FROM signals WHERE signal_id = ?", [row["signal_id"]]
                )
                strategy = signal["strategy"] if signal else None
            opened = _new_position(row, order, fill, strategy)
            event = Event("position_opened", "positions", fill.filled_at, {"price": fill.price})
            insert = Insert("positions", (opened,), id_column="position_id", events=(event,))
            contract = {**_contract_of(row), "entry_signal_id": row["signal_id"]}
            return insert, {**opened, **contract, "position_id": IdOf(part)}
        rest, realised = apply_fill(position_from_row(position), fill)
        key = {"position_id": position["position_id"]}
        if rest is None:
            reason = row["reason"] or "exit"
            values: dict[str, Any] = {
                "status": "closed",
                "closed_at": fill.filled_at,
                "exit_order_id": row["order_id"],
                "realised_pnl": (position["realised_pnl"] or 0.0) + realised,
                "unrealised_pnl": 0.0,
                "mark": fill.price,
                "marked_at": fill.filled_at,
                "exit_reason": reason,
                "quantity": 0,
            }
            basis = float(position["avg_price"]) * float(position["quantity"]) * order.multiplier
            payload = {
                "engine": order.engine,
                "signal_id": position.get("entry_signal_id"),
                "symbol": order.symbol,
                "price": fill.price,
                "realised_pnl": values["realised_pnl"],
                "cost_basis": basis,
                "return_pct": values["realised_pnl"] / basis if basis > 0 else 0.0,
                "reason": reason,
                "closed_at": fill.filled_at.isoformat(),
            }
            event = Event(
                "position_closed",
                "positions",
                fill.filled_at,
                payload,
                str(position["position_id"]),
            )
        else:
            values = {
                "quantity": rest.quantity,
                "avg_price": rest.avg_price,
                "realised_pnl": (position["realised_pnl"] or 0.0) + realised,
            }
            payload = {"price": fill.price, "quantity": rest.quantity, "realised_pnl": realised}
            event = Event(
                "position_changed",
                "positions",
                fill.filled_at,
                payload,
                str(position["position_id"]),
            )
        return Update("positions", key, values, events=(event,)), {**position, **values}

    async def _move(self, row: dict[str, Any], state: str, reason: str | None) -> str:
        if not can_move(row["status"], state):
            return str(row["status"])
        at = await self._clock.now()
        await self._store.write.remote(
            Several((_state_update(row, state, reason, at, f"order_{state}"),))
        )
        self._metrics.on_state(state)
        return state

    async def _order(self, order_id: int) -> dict[str, Any]:
        row = await self._read.one("SELECT * FROM orders WHERE order_id = ?", [order_id])
        if row is None:
            raise Rejected("not_found", f"no order {order_id}")
        return row

    # --- sweeps and reconciliation -----------------------------------------------------------

    async def tick(self, now: datetime) -> int:
        """Sweep: send orders left `pending_execution`; reconcile what is in flight."""
        rows = await self._read.rows(
            "SELECT order_id FROM orders WHERE status = 'pending_execution' AND engine = ? "
            "ORDER BY order_id",
            [self._engine],
        )
        for row in rows:
            await isolated(self.submit(int(row["order_id"])), "order", row["order_id"])
        summary = await self.reconcile()
        return len(rows) + summary["looked_up"]

    async def reconcile(self) -> dict[str, int]:
        """Our in-flight orders and open positions against the broker's book."""
        ours_rows = await self._read.rows(IN_FLIGHT_SQL, [self._engine])
        ours = [
            TrackedOrder(int(r["order_id"]), r["client_order_id"], r["status"], int(r["filled"]))
            for r in ours_rows
            if not self._locks[int(r["order_id"])].locked()  # in hand in this process
        ]
        known = {
            r["client_order_id"]
            for r in await self._read.rows(
                "SELECT client_order_id FROM orders WHERE engine = ?", [self._engine]
            )
        }
        broker_open = await self._broker.open_orders()
        differences = reconcile_orders(ours, known, broker_open)
        differences += reconcile_positions(
            await self._open_quantities(), await self._broker.positions()
        )
        now = await self._clock.now()
        await self._differences(differences, now)
        by_id = {o.client_order_id: o for o in broker_open}
        looked_up = 0
        for d in differences:
            if d.kind not in ("not_open_at_broker", "state_changed"):
                continue
            mine = next(o for o in ours if o.client_order_id == d.key)
            async with self._locks[mine.order_id]:
                row = await self._order(mine.order_id)
                if row["status"] not in IN_FLIGHT:
                    continue
                answer = by_id.get(d.key)
                if answer is None:
                    looked_up += 1
                    await self._reconcile_one(row)
                else:
                    await self._apply(row, answer)
        return {"differences": len(differences), "looked_up": looked_up}

    async def _reconcile_one(self, row: dict[str, Any]) -> None:
        """An in-flight order the broker no longer lists as open: look it up once per pass;
        after `MAX_LOOKUPS` passes without finding it, it is lost."""
        self._metrics.on_lookup()
        try:
            found = await self._broker.lookup(row["client_order_id"])
        except Retryable:
            return
        if found is not None:
            await self._apply(row, found)
            return
        if row["status"] == "lost":
            return
        lookups = int(row["attempts"]) + 1
        if after_lookup(None, lookups) == "lost":
            await self._move(row, "lost", f"not found after {MAX_LOOKUPS} look-ups")
        else:
            await self._store.write.remote(
                Update("orders", {"order_id": row["order_id"]}, {"attempts": lookups})
            )

    async def _open_quantities(self) -> dict[str, int]:
        rows = await self._read.rows(
            "SELECT instrument, side, sum(quantity) AS q FROM positions "
            "WHERE status = 'open' AND engine = ? GROUP BY instrument, side",
            [self._engine],
        )
        out: dict[str, int] = {}
        for r in rows:
            signed = int(r["q"]) if r["side"] == "long" else -int(r["q"])
            out[r["instrument"]] = out.get(r["instrument"], 0) + signed
        return out

    async def _differences(self, differences: Sequence[Difference], at: datetime) -> None:
        if not differences:
            return
        events = tuple(
            Event(
                "reconciliation_difference",
                "orders",
                at,
                {"kind": d.kind, "ours": d.ours, "theirs": d.theirs, "broker": self._broker.name},
                d.key,
            )
            for d in differences
        )
        for d in differences:
            self._metrics.on_difference(d.kind)
        await self._store.record_events.remote(events)


def _state_update(  # noqa: PLR0917
    row: dict[str, Any],
    state: str,
    reason: str | None,
    at: datetime,
    kind: str,
    extra: dict[str, Any] | None = None,
) -> Update:
    payload = {"from": row["status"], "reason": reason, **(extra or {})}
    event = Event(kind, "orders", at, payload, row["idempotency_key"])
    values: dict[str, Any] = {"status": state, "updated_at": at}
    if reason is not None:
        values["reason"] = reason
    return Update("orders", {"order_id": row["order_id"]}, values, events=(event,))


def _trade(row: dict[str, Any], bf: BrokerFill) -> Insert:
    trade = {
        "order_id": row["order_id"],
        "filled_at": bf.filled_at,
        "side": row["side"],
        "quantity": bf.quantity,
        "price": bf.price,
        "fees": bf.fees,
        "fill_id": bf.fill_id,
    }
    payload = {"price": bf.price, "quantity": bf.quantity, "fill_id": bf.fill_id}
    event = Event("order_fill", "orders", bf.filled_at, payload, row["idempotency_key"])
    return Insert("trades", (trade,), id_column="trade_id", unique=(("fill_id",),), events=(event,))


def _as_fill(order: PlannedOrder, bf: BrokerFill) -> Fill:
    return Fill(
        idempotency_key=order.idempotency_key,
        client_order_id=order.client_order_id,
        engine=order.engine,
        symbol=order.symbol,
        instrument=order.instrument,
        asset_class=order.asset_class,
        contract=order.contract,
        side=order.side,
        quantity=bf.quantity,
        price=bf.price,
        multiplier=order.multiplier,
        fees=bf.fees,
        filled_at=bf.filled_at,
        reference_price=bf.reference_price if bf.reference_price is not None else bf.price,
        model=bf.model or "broker",
    )


def _new_position(
    row: dict[str, Any], order: PlannedOrder, fill: Fill, strategy: str | None
) -> dict[str, Any]:
    return {
        "engine": order.engine,
        "symbol": order.symbol,
        "instrument": order.instrument,
        "strategy": strategy,
        "side": order.position_side,
        "quantity": fill.quantity,
        "avg_price": fill.price,
        "multiplier": order.multiplier,
        "status": "open",
        "opened_at": fill.filled_at,
        "entry_order_id": row["order_id"],
        "mark": fill.price,
        "marked_at": fill.filled_at,
        "unrealised_pnl": 0.0,
        "realised_pnl": 0.0,
    }


def _contract_of(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("idempotency_key", "option_right", "strike", "expiry", "asset_class")
    return {k: row[k] for k in keys}
