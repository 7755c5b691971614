"""The paper broker on the bundled replay data and a simulated clock (no Ray)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.adapters.symbol_file import load_symbol_table
from engine.clock import SimClock
from engine.errors import Rejected, Retryable
from engine.fills import MODEL_EQUITY_NEXT_OPEN, MODEL_OPTION_MID, fill_option
from engine.marketdata import Bar, OptionContract, OptionQuote, Right, Timeframe
from engine.orders import PlannedOrder, client_order_id
from engine.paper_broker import PaperBroker

T0 = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)  # 10:00 ET, in the spy-2013-10 scenario
SYMBOLS = load_symbol_table(bundled_data_dir() / "symbol_properties.csv")


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


def order(
    contract: OptionContract | None, quantity: int = 2, at: datetime = T0, n: int = 1
) -> PlannedOrder:
    key = f"live/signal/{n}"
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="entry",
        signal_id=n,
        engine="live",
        symbol=contract.underlying if contract else "SPY",
        instrument=contract.occ_symbol if contract else "SPY",
        asset_class="option" if contract else "equity",
        right=contract.right if contract else None,
        strike=contract.strike if contract else None,
        expiry=contract.expiry if contract else None,
        side="buy",
        position_side="long",
        quantity=quantity,
        multiplier=100 if contract else 1,
        reference_price=None,
        created_at=at,
    )


class Flaky:
    """The real replay data behind a line that drops the first `failures` requests."""

    def __init__(self, market: ReplayMarketData, failures: int) -> None:
        self.market = market
        self.failures = failures
        self.asked: list[datetime] = []

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        self.asked.append(as_of)
        if self.failures > 0:
            self.failures -= 1
            raise Retryable("vendor timeout")
        return await self.market.option_quote(contract, as_of)

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        return await self.market.bars(symbol, timeframe, start, end, as_of)


async def drive(clock: SimClock, task: asyncio.Task[Any]) -> None:
    """Move simulated time to each wake-up while `task` runs (a discrete-event driver)."""
    while not task.done():
        due = clock.next_deadline()
        if due is None:
            await asyncio.sleep(0)
        else:
            await clock.advance_to_async(due)


def broker(market: ReplayMarketData | Flaky, clock: SimClock) -> PaperBroker:
    async def now() -> datetime:
        return clock.now()

    return PaperBroker(market, now, clock.sleep, SYMBOLS, slippage_ticks=1)


async def listed_call(replay: ReplayMarketData) -> OptionContract:
    chain = await replay.option_chain("SPY", None, T0)
    expiry = min(q.contract.expiry for q in chain if q.contract.expiry >= date(2013, 10, 11))
    calls = [
        q.contract for q in chain if q.contract.expiry == expiry and q.contract.right == Right.CALL
    ]
    spot = (await replay.quote("SPY", T0)).last
    return min(calls, key=lambda c: abs(c.strike - spot))


def test_an_option_order_fills_by_the_documented_model_and_is_known_by_its_id(
    replay: ReplayMarketData,
) -> None:
    async def scenario() -> None:
        clock = SimClock(T0)
        paper = broker(replay, clock)
        contract = await listed_call(replay)
        o = order(contract)
        answer = await paper.submit(o)
        quote = await replay.option_quote(contract, T0)
        expected = fill_option(o, quote, SYMBOLS.get("SPY"), 1, T0)
        assert answer.status == "filled" and answer.filled_quantity == 2
        (fill,) = answer.fills
        assert (fill.price, fill.model, fill.filled_at) == (expected.price, MODEL_OPTION_MID, T0)
        assert answer.filled_avg_price == expected.price
        # the same client order id again is the same order, never a second fill
        assert await paper.submit(o) is answer
        assert await paper.lookup(o.client_order_id) is answer
        assert await paper.lookup("tdm-unknown") is None
        assert await paper.open_orders() == []
        (held,) = await paper.positions()
        assert (held.instrument, held.quantity, held.avg_price) == (o.instrument, 2, fill.price)

    asyncio.run(scenario())


def test_a_missing_quote_is_retried_after_1_2_4_seconds_then_fails(
    replay: ReplayMarketData,
) -> None:
    async def scenario(failures: int) -> tuple[list[datetime], str]:
        clock = SimClock(T0)
        flaky = Flaky(replay, failures)
        paper = broker(flaky, clock)
        task = asyncio.create_task(paper.submit(order(await listed_call(replay))))
        await drive(clock, task)
        try:
            outcome = (await task).status
        except Retryable as exc:
            outcome = exc.message
        return flaky.asked, outcome

    asked, outcome = asyncio.run(scenario(2))
    assert outcome == "filled"
    assert asked == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)]
    asked, outcome = asyncio.run(scenario(4))
    assert outcome.startswith("retries_exhausted")
    assert [(t - T0).total_seconds() for t in asked] == [0, 1, 3, 7]


def test_a_definitive_refusal_is_not_retried(replay: ReplayMarketData) -> None:
    async def scenario() -> None:
        paper = broker(replay, SimClock(T0))
        unknown = OptionContract("NOSUCH", date(2013, 10, 11), 150.0, Right.CALL)
        with pytest.raises(Rejected):
            await paper.submit(order(unknown))

    asyncio.run(scenario())


def test_shares_fill_at_the_next_bars_open_once_that_bar_has_closed(
    replay: ReplayMarketData,
) -> None:
    async def scenario() -> None:
        at = T0 + timedelta(seconds=20)  # the next bar opens at 10:01
        clock = SimClock(at)
        paper = broker(replay, clock)
        task = asyncio.create_task(paper.submit(order(None, quantity=10, at=at)))
        await asyncio.sleep(0)
        assert not task.done()  # waits on the clock for 10:01's bar to close
        await clock.advance_to_async(T0 + timedelta(minutes=2))
        answer = await task
        (bar,) = await replay.bars(
            "SPY",
            Timeframe.MINUTE,
            T0 + timedelta(minutes=1),
            T0 + timedelta(minutes=2),
            T0 + timedelta(minutes=2),
        )
        (fill,) = answer.fills
        assert fill.filled_at == bar.ts and fill.model == MODEL_EQUITY_NEXT_OPEN
        assert bar.open <= fill.price <= bar.high

    asyncio.run(scenario())
