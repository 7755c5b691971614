"""AlpacaExecutor: Alpaca's trading adapter (`engine.adapters.alpaca_trading`) as an actor.

It takes the paper executor's place behind `actors.executor.RemoteBroker` when
TANDEM_BROKER=alpaca, for the same reasons: the HTTP client (and its connection pool)
lives in one process for every caller, the tracker's side of the hop turns an actor that
died during a submit into `Ambiguous`, and Ray restarts it. Back-off waits go through the
run's clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors.clock import ClockLink
from engine.adapters.alpaca_trading import AlpacaAccess, AlpacaAccount, AlpacaBroker
from engine.broker import BrokerOrder, BrokerPosition
from engine.orders import PlannedOrder


class AlpacaExecutor:
    """The broker port's methods (and the account), answered by `AlpacaBroker`."""

    name = "alpaca"

    def __init__(self, access: AlpacaAccess, clock: ClockLink, timeout_s: float = 10.0) -> None:
        self._broker = AlpacaBroker(
            key_id=access.key_id,
            secret_key=access.secret_key,
            base_url=access.endpoints.trading_url,
            sleep=clock.sleep,
            now=clock.now,
            timeout_s=timeout_s,
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

    async def account(self) -> AlpacaAccount:
        return await self._broker.account()
