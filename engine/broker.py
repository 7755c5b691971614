"""The broker port: what Engine 1 needs from a venue, paper or real.

A broker takes a `PlannedOrder` under our `client_order_id` and answers with the venue's
view of that order (`BrokerOrder`). Engine 1 never talks to a broker directly: the
OrderTracker registers each order before it is sent and turns every answer into one of
our order states (`engine.order_tracker`).

What a broker raises, and what the tracker does about it:

- `Rejected`: the venue said no (insufficient buying power, not tradable, market
  closed...). Definitive: the order is `rejected` with the code.
- `Ambiguous`: the request may or may not have reached the venue (a timeout after
  sending, a connection dropped mid-answer, the venue's process died). The tracker looks
  the order up again by client order id.
- any other `Retryable`: the request certainly did not take effect (refused before
  sending, rate limited and out of retries). The order is `failed` with the reason.

An adapter retries what is safe to retry with back-off itself (the paper broker waits
for a quote; Alpaca's adapter for rate limits), so a `Retryable` that reaches the
tracker is final for that attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from engine.errors import Retryable
from engine.orders import OrderSide, PlannedOrder

BrokerStatus = Literal[
    "new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"
]
OPEN_STATUSES: frozenset[str] = frozenset({"new", "accepted", "partially_filled"})


class Ambiguous(Retryable):
    """The request may have reached the venue: look the order up before doing anything."""


@dataclass(frozen=True, slots=True)
class BrokerFill:
    """One execution. `fill_id` is unique per venue: the same fill reported twice (a
    stream message and a reconciliation) is recorded once."""

    client_order_id: str
    fill_id: str
    quantity: int
    price: float
    fees: float
    filled_at: datetime
    reference_price: float | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """The venue's view of one of our orders.

    `fills` carries the executions known with this answer; a venue that reports only
    cumulative figures (`filled_quantity`, `filled_avg_price`) leaves it empty and the
    tracker derives the missing part (see `engine.order_tracker.missing_fill`).
    """

    client_order_id: str
    broker_order_id: str
    instrument: str
    side: OrderSide
    quantity: int
    status: BrokerStatus
    updated_at: datetime
    filled_quantity: int = 0
    filled_avg_price: float | None = None
    reason: str | None = None
    fills: tuple[BrokerFill, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """A position as the venue holds it; `quantity` is signed (short < 0)."""

    instrument: str
    quantity: int
    avg_price: float


class Broker(Protocol):
    """The port every venue implements (paper, Alpaca)."""

    @property
    def name(self) -> str: ...

    async def submit(self, order: PlannedOrder) -> BrokerOrder: ...

    async def cancel(self, client_order_id: str) -> BrokerOrder | None: ...

    async def lookup(self, client_order_id: str) -> BrokerOrder | None: ...

    async def open_orders(self) -> Sequence[BrokerOrder]: ...

    async def positions(self) -> Sequence[BrokerPosition]: ...
