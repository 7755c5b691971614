"""PaperExecutor: the paper broker (`engine.paper_broker`) as an actor behind the broker port.

It gets quotes and bars through the MarketData actor (which charges vendor calls to the
Throttler) as of the run's clock, and fills by docs/fills.md. The OrderTracker sends it
orders and records what it answers; `RemoteBroker` is the tracker's side of the hop, where
a call that dies with the actor (or times out) is ambiguous: the order may have filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray

from actors.clock import ClockLink
from actors.marketdata import RemoteMarket
from engine.broker import Ambiguous, BrokerOrder, BrokerPosition
from engine.errors import Retryable
from engine.orders import PlannedOrder
from engine.paper_broker import PaperBroker
from engine.symbols import SymbolTable


class PaperExecutor:
    """The paper venue as an actor: the broker port's methods, answered by `PaperBroker`."""

    name = "paper"

    def __init__(
        self, marketdata: Any, clock: ClockLink, symbols: SymbolTable, slippage_ticks: int = 1
    ) -> None:
        self._broker = PaperBroker(
            RemoteMarket(marketdata), clock.now, clock.sleep, symbols, slippage_ticks=slippage_ticks
        )

    async def submit(self, order: PlannedOrder) -> BrokerOrder:
        return await self._broker.submit(order)

    async def cancel(self, client_order_id: str) -> BrokerOrder | None:
        return await self._broker.cancel(client_order_id)

    async def lookup(self, client_order_id: str) -> BrokerOrder | None:
        return await self._broker.lookup(client_order_id)

    async def open_orders(self) -> Sequence[BrokerOrder]:
        return await self._broker.open_orders()

    async def positions(self) -> Sequence[BrokerPosition]:
        return await self._broker.positions()


class RemoteBroker:
    """A broker actor's handle as a `Broker`: a submit lost with the actor is `Ambiguous`."""

    def __init__(self, handle: Any, name: str = "paper") -> None:
        self._handle = handle
        self.name = name

    async def submit(self, order: PlannedOrder) -> BrokerOrder:
        try:
            answer: BrokerOrder = await self._handle.submit.remote(order)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise Ambiguous(f"the {self.name} broker actor died during a submit: {exc}") from exc
        return answer

    async def cancel(self, client_order_id: str) -> BrokerOrder | None:
        answer: BrokerOrder | None = await self._call("cancel", client_order_id)
        return answer

    async def lookup(self, client_order_id: str) -> BrokerOrder | None:
        answer: BrokerOrder | None = await self._call("lookup", client_order_id)
        return answer

    async def open_orders(self) -> Sequence[BrokerOrder]:
        answer: Sequence[BrokerOrder] = await self._call("open_orders")
        return answer

    async def positions(self) -> Sequence[BrokerPosition]:
        answer: Sequence[BrokerPosition] = await self._call("positions")
        return answer

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._handle, method).remote(*args)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise Retryable(f"the {self.name} broker actor is unavailable: {exc}") from exc
