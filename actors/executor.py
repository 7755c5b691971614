"""PaperExecutor: fill a pending order on paper and record trade, order and position at once.

The quote comes from the MarketData actor (which goes through the Throttler for vendors)
as of the run's clock; the fill is `engine.fills` (docs/fills.md). A transient failure is
retried up to 3 times with 1 s, 2 s, 4 s back-off on the run's clock; after that, or on a
definitive refusal, the order is `failed` with the reason. Trade, order status and position
change commit in one Store transaction, with their events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from actors.clock import ClockLink
from actors.pipeline import StoreReader, position_from_row
from engine.errors import Conflict, Rejected, Retryable
from engine.events import Event
from engine.fills import Fill, fill_option
from engine.marketdata import Right
from engine.orders import PlannedOrder
from engine.positions import apply_fill
from engine.retry import backoff_delay
from engine.symbols import SymbolTable
from storage.writes import Insert, Several, Update

RETRIES = 3


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


class PaperExecutor:
    def __init__(
        self,
        store: Any,
        marketdata: Any,
        clock: ClockLink,
        symbols: SymbolTable,
        slippage_ticks: int = 1,
    ) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._md = marketdata
        self._clock = clock
        self._symbols = symbols
        self._slippage = slippage_ticks

    async def execute(self, order_id: int) -> str:
        row = await self._read.one("SELECT * FROM orders WHERE order_id = ?", [order_id])
        if row is None:
            raise Rejected("not_found", f"no order {order_id}")
        if row["status"] != "pending_execution":
            return str(row["status"])  # filled or failed already: never twice
        order = planned_from_row(row)
        outcome = await self._fill_with_retries(order)
        if isinstance(outcome, str):
            await self._store.write.remote(_failed(row, outcome, await self._clock.now()))
            return "failed"
        try:
            await self._store.write.remote(await self._fill_writes(row, order, outcome))
        except Conflict:
            return "filled"  # another execute of the same order got there first
        return "filled"

    async def _fill_with_retries(self, order: PlannedOrder) -> Fill | str:
        """The first attempt prices at the order's own time (event time: a replay gives the
        same fill however fast it runs); each retry at that time plus the back-off waited."""
        at = order.created_at
        for attempt in range(RETRIES + 1):
            try:
                return await self._fill(order, at)
            except Retryable as exc:
                if attempt == RETRIES:
                    return f"retries_exhausted: {exc}"
                delay = backoff_delay(attempt + 1, 1.0, 30.0, exc.retry_after)
                await self._clock.sleep(delay)
                at += timedelta(seconds=delay)
            except Rejected as exc:
                return exc.code
        raise AssertionError("unreachable")

    async def _fill(self, order: PlannedOrder, now: datetime) -> Fill:
        contract = order.contract
        if contract is None:
            raise NotImplementedError(
                "equity paper fills (next bar's open in replay) are not built yet; "
                "use the default option instrument mode"
            )
        quote = await self._md.option_quote.remote(contract, now)
        return fill_option(order, quote, self._symbols.get(order.symbol), self._slippage, now)

    async def _fill_writes(self, row: dict[str, Any], order: PlannedOrder, fill: Fill) -> Several:
        at = fill.filled_at
        trade = {
            "order_id": row["order_id"],
            "filled_at": at,
            "side": fill.side,
            "quantity": fill.quantity,
            "price": fill.price,
            "fees": fill.fees,
        }
        filled = Event("order_filled", "orders", at, {"price": fill.price}, order.idempotency_key)
        parts: list[Insert | Update] = [
            # one paper fill per order: a repeated execute (a sweep racing a message) is
            # refused here, in memory, before anything is written twice
            Insert("trades", (trade,), id_column="trade_id", unique=(("order_id",),)),
            Update(
                "orders",
                {"order_id": row["order_id"]},
                {"status": "filled", "updated_at": at, "attempts": 1},
                events=(filled,),
            ),
        ]
        if order.intent == "entry":
            parts.append(await self._open(row, order, fill))
        else:
            parts.append(await self._close(row, fill))
        return Several(tuple(parts))

    async def _open(self, row: dict[str, Any], order: PlannedOrder, fill: Fill) -> Insert:
        signal = await self._read.one(
            "SELECT strategy FROM signals WHERE signal_id = ?", [row["signal_id"]]
        )
        position = {
            "engine": order.engine,
            "symbol": order.symbol,
            "instrument": order.instrument,
            "strategy": signal["strategy"] if signal else None,
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
        }
        event = Event("position_opened", "positions", fill.filled_at, {"price": fill.price})
        return Insert("positions", (position,), id_column="position_id", events=(event,))

    async def _close(self, row: dict[str, Any], fill: Fill) -> Update:
        current = await self._read.position_row(row["position_id"])
        if current is None or current["status"] != "open":
            raise Rejected("no_open_position", f"position {row['position_id']}")
        _rest, realised = apply_fill(position_from_row(current), fill)
        reason = row["reason"] or "exit"
        event = Event(
            "position_closed",
            "positions",
            fill.filled_at,
            {"price": fill.price, "realised_pnl": realised, "reason": reason},
            str(row["position_id"]),
        )
        values = {
            "status": "closed",
            "closed_at": fill.filled_at,
            "exit_order_id": row["order_id"],
            "realised_pnl": realised,
            "unrealised_pnl": 0.0,
            "mark": fill.price,
            "marked_at": fill.filled_at,
            "exit_reason": reason,
        }
        return Update("positions", {"position_id": row["position_id"]}, values, events=(event,))


def _failed(row: dict[str, Any], reason: str, at: datetime) -> Update:
    event = Event("order_failed", "orders", at, {"reason": reason}, row["idempotency_key"])
    values = {"status": "failed", "reason": reason, "updated_at": at}
    return Update("orders", {"order_id": row["order_id"]}, values, events=(event,))
