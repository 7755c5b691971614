"""MarketDataService over real replay providers: cache, coalescing, throttling, and which
rejections fall back. Failing vendors (Retryable, open breakers, all down) are exercised
against loopback servers in tests/contract/test_market_service_vendors.py.

The 2023 replay (`spy-2023-08-03`: SPY only, minute bars of one 2023 session) plays a
primary that cannot serve October 2013 minute bars (a vendor-side "unavailable") and does
not know AIG (a caller-side "unknown_symbol"); the 2013 replay is the fallback.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest

from engine.adapters.replay import ReplayMarketData
from engine.clock import SimClock
from engine.errors import NotFound, RateLimited, Rejected
from engine.market_service import MarketDataService, ProviderLimit, ProvidersDown
from engine.marketdata import MarketDataPort, Timeframe
from engine.throttle import RateLimit, Throttler
from tests.contract.sim_driver import drive

T = TypeVar("T")
AS_OF = datetime(2013, 10, 7, 14, 0, 30, tzinfo=UTC)
MINUTES = (AS_OF.replace(second=0) - timedelta(minutes=30), AS_OF.replace(second=0))


@pytest.fixture(scope="module")
def spy2013() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture(scope="module")
def spy2023() -> ReplayMarketData:
    return ReplayMarketData("spy-2023-08-03")


def run(clock: SimClock, coro: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        return await drive(clock, coro)

    return asyncio.run(main())


def failure(clock: SimClock, coro: Coroutine[Any, Any, Any]) -> Exception:
    try:
        run(clock, coro)
    except Exception as exc:  # the error under test
        return exc
    raise AssertionError("the call succeeded")


def test_a_repeated_request_is_answered_from_the_cache(spy2013: ReplayMarketData) -> None:
    clock = SimClock(AS_OF)
    service = MarketDataService(spy2013, clock=clock)

    async def ask_twice() -> list[Any]:
        first = await service.bars("SPY", Timeframe.MINUTE, *MINUTES, AS_OF)
        again = await service.bars("SPY", Timeframe.MINUTE, *MINUTES, AS_OF + timedelta(seconds=20))
        direct = await spy2013.bars("SPY", Timeframe.MINUTE, *MINUTES, AS_OF)
        return [first, again, direct]

    first, again, direct = run(clock, ask_twice())
    assert first == again == direct and len(direct) == 30
    stats = service.stats()
    assert (stats.cache_hits, stats.cache_misses, stats.calls) == (1, 1, {"replay": 1})
    assert stats.hit_rate == 0.5 and stats.requests == 2


def test_a_cached_list_cannot_be_changed_by_a_caller(spy2013: ReplayMarketData) -> None:
    clock = SimClock(AS_OF)
    service = MarketDataService(spy2013, clock=clock)
    first = run(clock, service.option_chain("SPY", date(2013, 10, 11), AS_OF))
    size = len(first)
    first.clear()
    assert len(run(clock, service.option_chain("SPY", date(2013, 10, 11), AS_OF))) == size


def test_identical_concurrent_requests_reach_the_provider_once(spy2013: ReplayMarketData) -> None:
    clock = SimClock(AS_OF)
    service = MarketDataService(spy2013, clock=clock)

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(service.quote("SPY", AS_OF) for _ in range(5))))

    quotes = run(clock, together())
    assert len(set(quotes)) == 1
    stats = service.stats()
    assert (stats.calls["replay"], stats.coalesced, stats.cache_misses) == (1, 4, 5)


def test_calls_are_charged_to_the_limit_and_wait_for_it(spy2013: ReplayMarketData) -> None:
    clock = SimClock(AS_OF)
    throttler = Throttler([RateLimit("replay", 3, 60.0)], clock)
    limit = ProviderLimit("replay", {"option_chain": 2})
    service = MarketDataService(spy2013, clock=clock, throttler=throttler, primary_limit=limit)

    async def four() -> list[datetime]:
        times = []
        await service.option_chain("SPY", date(2013, 10, 11), AS_OF)  # weight 2
        times.append(clock.now())
        for symbol in ("SPY", "SPY", "IBM"):  # the second SPY is a cache hit: not charged
            await service.quote(symbol, AS_OF)
            times.append(clock.now())
        return times

    times = run(clock, four())
    assert times == [AS_OF, AS_OF, AS_OF, AS_OF + timedelta(seconds=60)]
    assert throttler.usage("replay") == 1


def test_a_limit_without_a_throttler_is_a_configuration_error(spy2013: ReplayMarketData) -> None:
    with pytest.raises(ValueError, match="throttler"):
        MarketDataService(spy2013, clock=SimClock(AS_OF), primary_limit=ProviderLimit("x"))


def test_a_vendor_side_rejection_falls_back(
    spy2023: ReplayMarketData, spy2013: ReplayMarketData
) -> None:
    clock = SimClock(AS_OF)
    service = MarketDataService(spy2023, spy2013, clock=clock)
    with pytest.raises(Rejected) as info:  # the primary alone cannot serve October 2013
        run(clock, spy2023.bars("SPY", Timeframe.MINUTE, *MINUTES, AS_OF))
    assert info.value.code == "unavailable"
    bars = run(clock, service.bars("SPY", Timeframe.MINUTE, *MINUTES, AS_OF))
    assert bars == run(clock, spy2013.bars("SPY", Timeframe.MINUTE, *MINUTES, AS_OF))
    stats = service.stats()
    assert stats.calls == {"replay": 1, "replay-fallback": 1}
    assert stats.failures == {"replay": 1, "replay-fallback": 0}
    assert stats.fallbacks == 1


def test_a_caller_side_rejection_from_the_primary_is_not_masked(
    spy2023: ReplayMarketData, spy2013: ReplayMarketData
) -> None:
    clock = SimClock(AS_OF)
    service = MarketDataService(spy2023, spy2013, clock=clock)
    assert run(clock, spy2013.quote("AIG", AS_OF)).symbol == "AIG"  # the fallback knows AIG
    err = failure(clock, service.quote("AIG", AS_OF))
    assert isinstance(err, NotFound) and err.code == "unknown_symbol"
    assert service.stats().calls == {"replay": 1, "replay-fallback": 0}


def test_when_both_reject_the_primary_answer_stands(
    spy2023: ReplayMarketData, spy2013: ReplayMarketData
) -> None:
    clock = SimClock(AS_OF)
    service = MarketDataService(spy2023, spy2013, clock=clock)
    before = (datetime(2013, 10, 3, 14, tzinfo=UTC), datetime(2013, 10, 3, 15, tzinfo=UTC))
    err = failure(clock, service.bars("SPY", Timeframe.MINUTE, *before, AS_OF))
    assert isinstance(err, Rejected) and err.code == "unavailable"
    assert "2023-08-03" in str(err.detail)  # the primary's coverage, not the fallback's
    assert service.stats().calls == {"replay": 1, "replay-fallback": 1}


def test_our_own_full_throttler_queue_falls_back(
    spy2023: ReplayMarketData, spy2013: ReplayMarketData
) -> None:
    clock = SimClock(AS_OF)
    throttler = Throttler([RateLimit("primary", 1, 60.0)], clock, max_queue=0)
    service = MarketDataService(
        spy2023, spy2013, clock=clock, throttler=throttler, primary_limit=ProviderLimit("primary")
    )
    run(clock, service.quote("SPY", AS_OF))  # spends the primary's one call this minute
    err = failure(clock, throttler.acquire("primary"))
    assert isinstance(err, RateLimited)
    quote = run(clock, service.quote("IBM", AS_OF))
    assert quote == run(clock, spy2013.quote("IBM", AS_OF))
    assert service.stats().fallbacks == 1


def test_providers_down_pickles_with_its_fields() -> None:
    err = ProvidersDown("market data down", 12.5, {"alpaca": "Retryable: 503"})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ProvidersDown
    assert (back.message, back.retry_after, back.failures) == (
        "market data down",
        12.5,
        {"alpaca": "Retryable: 503"},
    )


def test_the_service_is_a_market_data_port(spy2013: ReplayMarketData) -> None:
    assert isinstance(MarketDataService(spy2013, clock=SimClock(AS_OF)), MarketDataPort)
