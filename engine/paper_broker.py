"""The paper broker: the default venue behind the broker port, filling by docs/fills.md.

- Options fill at the contract's quote as of the order's time: mid ± slippage, capped
  at the touch (`engine.fills.fill_option`).
- Shares fill at the open of the next regular-hours 1-minute bar (the first bar opening
  at or after the order; an order placed outside regular hours waits for the next open,
  as a market order at a broker is queued for the open), capped at that bar's high or
  low (`engine.fills.fill_equity_next_open`). The venue simulates the market through
  that minute, so it reads the bar once it has closed: it waits on the clock until then
  (on the live clock up to a minute, or until the next session's first minute).
- A quote or bar that is not available yet (`Retryable`) is retried up to `RETRIES`
  times after 1 s, 2 s, 4 s on the clock, each at the order's time plus the back-off
  waited; then the submit raises `Retryable("retries_exhausted: ...")`, which the
  tracker records as `failed`. A definitive refusal (`Rejected`, e.g. `no_offer`) is
  raised as is: the order is `rejected`.
- Every order fills whole, at once: nothing ever rests open. The book (client order id →
  answer) answers look-ups and repeated submits with the same order; it lives in this
  process, like a venue's memory that our process cannot see into.

Time comes from the order (`created_at`) and the injected `now`/`sleep`: a replay gives
the same fills however fast it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from engine.broker import BrokerFill, BrokerOrder, BrokerPosition
from engine.calendar import MarketCalendar, xnys_calendar
from engine.clock import ensure_utc
from engine.errors import Retryable
from engine.fills import FeeModel, Fill, fill_equity_next_open, fill_option, zero_fees
from engine.marketdata import Bar, OptionContract, OptionQuote, Timeframe
from engine.orders import PlannedOrder
from engine.retry import backoff_delay
from engine.symbols import SymbolTable

RETRIES = 3
BAR = timedelta(minutes=1)
NEXT_BAR_HORIZON = timedelta(days=5)  # a weekend and a holiday between order and next bar


class FillSource(Protocol):
    """The market data a paper fill needs (`engine.marketdata.MarketDataPort` has it)."""

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote: ...

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]: ...


class PaperFills:
    """The paper fill of an order by docs/fills.md, with the quote retries: shared by the
    paper broker (Engine 1) and the shadow executor (Engine 2), which holds no broker."""

    def __init__(
        self,
        market: FillSource,
        now: Callable[[], Awaitable[datetime]],
        sleep: Callable[[float], Awaitable[None]],
        symbols: SymbolTable,
        *,
        slippage_ticks: int = 1,
        fees: FeeModel = zero_fees,
        calendar: MarketCalendar | None = None,
    ) -> None:
        self._market = market
        self._now = now
        self._sleep = sleep
        self._symbols = symbols
        self._slippage = slippage_ticks
        self._fees = fees
        self._calendar = calendar or xnys_calendar()

    async def fill(self, order: PlannedOrder) -> Fill:
        """Fill `order` whole; `Retryable("retries_exhausted: ...")` after the retries,
        `Rejected` at once on a definitive refusal."""
        at = order.created_at
        for attempt in range(RETRIES + 1):
            try:
                return await self._fill(order, at)
            except Retryable as exc:
                if attempt == RETRIES:
                    raise Retryable(f"retries_exhausted: {exc}") from exc
                delay = backoff_delay(attempt + 1, 1.0, 30.0, exc.retry_after)
                await self._sleep(delay)
                at += timedelta(seconds=delay)
        raise AssertionError("unreachable")

    async def _fill(self, order: PlannedOrder, at: datetime) -> Fill:
        props = self._symbols.get(order.symbol)
        contract = order.contract
        if contract is not None:
            quote = await self._market.option_quote(contract, at)
            return fill_option(order, quote, props, self._slippage, at, fees=self._fees)
        bar = await self._next_bar(order, at)
        return fill_equity_next_open(order, bar, props, self._slippage, bar.ts, fees=self._fees)

    async def _next_bar(self, order: PlannedOrder, at: datetime) -> Bar:
        start = _minute_ceil(ensure_utc(at))
        if not self._calendar.is_open(start):  # queued for the next regular open
            start = self._calendar.next_open(start)
        closes = start + BAR  # the next bar has closed by then
        now = await self._now()
        if now < closes:
            await self._sleep((closes - now).total_seconds())
        bars = await self._market.bars(
            order.symbol, Timeframe.MINUTE, start, start + NEXT_BAR_HORIZON, closes
        )
        if not bars:
            raise Retryable(f"no {order.symbol} bar yet after {start.isoformat()}")
        return bars[0]


class PaperBroker:
    """The paper venue behind the broker port: `PaperFills` plus a book of answers."""

    name = "paper"

    def __init__(
        self,
        market: FillSource,
        now: Callable[[], Awaitable[datetime]],
        sleep: Callable[[float], Awaitable[None]],
        symbols: SymbolTable,
        *,
        slippage_ticks: int = 1,
        fees: FeeModel = zero_fees,
    ) -> None:
        self._fills = PaperFills(
            market, now, sleep, symbols, slippage_ticks=slippage_ticks, fees=fees
        )
        self._book: dict[str, BrokerOrder] = {}

    async def submit(self, order: PlannedOrder) -> BrokerOrder:
        known = self._book.get(order.client_order_id)
        if known is not None:  # the same client order id again: the same order
            return known
        answer = _filled(order, await self._fills.fill(order))
        self._book[order.client_order_id] = answer
        return answer

    async def cancel(self, client_order_id: str) -> BrokerOrder | None:
        """Nothing rests on paper: an order is filled (final) or unknown."""
        return self._book.get(client_order_id)

    async def lookup(self, client_order_id: str) -> BrokerOrder | None:
        return self._book.get(client_order_id)

    async def open_orders(self) -> Sequence[BrokerOrder]:
        return [o for o in self._book.values() if o.is_open]

    async def positions(self) -> Sequence[BrokerPosition]:
        held: dict[str, tuple[int, float]] = {}
        for o in self._book.values():
            qty, cost = held.get(o.instrument, (0, 0.0))
            signed = o.filled_quantity if o.side == "buy" else -o.filled_quantity
            held[o.instrument] = (qty + signed, cost + signed * (o.filled_avg_price or 0.0))
        return [
            BrokerPosition(instrument, qty, cost / qty)
            for instrument, (qty, cost) in sorted(held.items())
            if qty != 0
        ]


def _minute_ceil(t: datetime) -> datetime:
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + BAR


def _filled(order: PlannedOrder, fill: Fill) -> BrokerOrder:
    cid = order.client_order_id
    return BrokerOrder(
        client_order_id=cid,
        broker_order_id=f"paper-{cid}",
        instrument=order.instrument,
        side=order.side,
        quantity=order.quantity,
        status="filled",
        updated_at=fill.filled_at,
        filled_quantity=fill.quantity,
        filled_avg_price=fill.price,
        fills=(
            BrokerFill(
                client_order_id=cid,
                fill_id=f"paper-{cid}-1",
                quantity=fill.quantity,
                price=fill.price,
                fees=fill.fees,
                filled_at=fill.filled_at,
                reference_price=fill.reference_price,
                model=fill.model,
            ),
        ),
    )
