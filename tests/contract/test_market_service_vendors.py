"""MarketDataService with real vendor adapters against loopback servers, replay as fallback.

The vendors are the only fakes (`FakeAlpaca`, `FakeTwelveData`, scripted to fail); HTTP is
real; a vendor that is down is a port nobody listens on. Time is a `SimClock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.adapters.alpaca_data import ALPACA_DATA_LIMITS, ALPACA_LIMIT_ID, AlpacaMarketData
from engine.adapters.replay import ReplayMarketData
from engine.adapters.twelvedata import TWELVEDATA_FREE_LIMITS, TwelveDataMarketData
from engine.breaker import BreakerState
from engine.clock import SimClock
from engine.errors import NotFound, Retryable
from engine.market_service import MarketDataService, ProviderLimit, ProvidersDown
from engine.marketdata import Quote
from engine.throttle import Throttler
from tests.conftest import free_port
from tests.contract.sim_driver import drive
from tests.contract.test_alpaca_data import KEY_ID, SECRET
from tests.contract.test_alpaca_data import _seed as seed_alpaca
from tests.contract.test_twelvedata import API_KEY
from tests.contract.test_twelvedata import _seed as seed_twelvedata
from tests.contract.vendor_servers import (
    TD_MINUTE_CREDITS,
    FakeAlpaca,
    FakeTwelveData,
    LoopbackServer,
    Reply,
)

T0 = datetime(2013, 10, 4, 14, 0, 5, tzinfo=UTC)
UNAVAILABLE = Reply(503, {"message": "service unavailable"})
ALPACA_QUOTE = (168.21, 168.23, 168.22)  # FakeAlpaca's seeded bid, ask, last


class Transitions:
    """A `BreakerObserver` keeping every change as (provider, old, new, at)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, BreakerState, BreakerState, datetime]] = []

    def on_state(self, provider: str, old: BreakerState, new: BreakerState, at: datetime) -> None:
        self.seen.append((provider, old, new, at))

    def on_lookup(self, method: str, hit: bool) -> None:
        pass

    def on_call(self, provider: str, method: str, outcome: str) -> None:
        pass

    def on_fallback(self, provider: str, method: str) -> None:
        pass


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def alpaca_fake(clock: SimClock) -> FakeAlpaca:
    fake = FakeAlpaca(KEY_ID, SECRET, now=clock.now)
    seed_alpaca(fake)
    return fake


@pytest.fixture
def alpaca_url(alpaca_fake: FakeAlpaca) -> Iterator[str]:
    with LoopbackServer(alpaca_fake) as server:
        yield server.url


@pytest.fixture
def twelvedata_fake(clock: SimClock) -> FakeTwelveData:
    fake = FakeTwelveData(API_KEY, now=clock.now)
    seed_twelvedata(fake)
    return fake


@pytest.fixture
def twelvedata_url(twelvedata_fake: FakeTwelveData) -> Iterator[str]:
    with LoopbackServer(twelvedata_fake) as server:
        yield server.url


def alpaca(url: str, clock: SimClock, secret: str = SECRET) -> AlpacaMarketData:
    # one HTTP attempt per request: each port call is one breaker outcome, no back-off
    return AlpacaMarketData(key_id=KEY_ID, secret_key=secret, clock=clock, base_url=url, attempts=1)


def run(clock: SimClock, ports: list[Any], coro: Any) -> Any:
    """Run `coro` on the sim clock; return its result or the exception it raised."""

    async def main() -> Any:
        try:
            return await drive(clock, coro)
        except Exception as exc:  # the outcome under test
            return exc
        finally:
            for port in ports:
                await port.aclose()

    return asyncio.run(main())


def _bid_ask_last(quote: Quote) -> tuple[float, float, float]:
    return (quote.bid, quote.ask, quote.last)


def test_a_healthy_primary_answers(
    alpaca_url: str, clock: SimClock, replay: ReplayMarketData
) -> None:
    primary = alpaca(alpaca_url, clock)
    service = MarketDataService(primary, replay, clock=clock)
    quote = run(clock, [primary], service.quote("SPY", T0))
    assert _bid_ask_last(quote) == ALPACA_QUOTE
    assert service.stats().calls == {"alpaca": 1, "replay": 0}


def test_a_5xx_primary_falls_back_to_the_replay(
    alpaca_url: str, alpaca_fake: FakeAlpaca, clock: SimClock, replay: ReplayMarketData
) -> None:
    alpaca_fake.fail_next(UNAVAILABLE)
    primary = alpaca(alpaca_url, clock)
    service = MarketDataService(primary, replay, clock=clock)

    async def both() -> tuple[Quote, Quote]:
        return await service.quote("SPY", T0), await replay.quote("SPY", T0)

    answer, direct = run(clock, [primary], both())
    assert answer == direct
    stats = service.stats()
    assert (stats.calls, stats.failures, stats.fallbacks) == (
        {"alpaca": 1, "replay": 1},
        {"alpaca": 1, "replay": 0},
        1,
    )
    assert stats.breakers["alpaca"] is BreakerState.CLOSED


def test_five_failures_open_the_breaker_and_one_probe_closes_it_60_s_later(
    alpaca_url: str, alpaca_fake: FakeAlpaca, clock: SimClock, replay: ReplayMarketData
) -> None:
    alpaca_fake.fail_next(*[UNAVAILABLE] * 5)
    primary = alpaca(alpaca_url, clock)
    seen = Transitions()
    service = MarketDataService(primary, replay, clock=clock, observer=seen)
    minute = [T0 + timedelta(minutes=k) for k in range(8)]  # a new as-of minute each: no hits

    async def scenario() -> list[Any]:
        answers: list[Any] = [await service.quote("SPY", minute[k]) for k in range(6)]
        answers.append(len(alpaca_fake.calls))
        clock.advance_to(T0 + timedelta(seconds=60) - timedelta(microseconds=1))
        answers.append(await service.quote("SPY", minute[6]))
        answers.append(len(alpaca_fake.calls))
        clock.advance_to(T0 + timedelta(seconds=60))
        answers.append(await service.quote("SPY", minute[7]))
        return answers

    answers = run(clock, [primary], scenario())
    assert answers[6] == 5  # five requests, five failures; the sixth never reached Alpaca
    assert answers[8] == 5  # still open one microsecond before the 60 s
    assert _bid_ask_last(answers[9]) == ALPACA_QUOTE  # the probe reached a healthy Alpaca
    assert len(alpaca_fake.calls) == 5 + 2  # the probe: latest quote + latest trade
    stats = service.stats()
    assert stats.calls == {"alpaca": 6, "replay": 7}
    assert stats.fallbacks == 7
    assert stats.breakers["alpaca"] is BreakerState.CLOSED
    opened_at = T0
    assert seen.seen == [
        ("alpaca", BreakerState.CLOSED, BreakerState.OPEN, opened_at),
        ("alpaca", BreakerState.OPEN, BreakerState.HALF_OPEN, opened_at + timedelta(seconds=60)),
        ("alpaca", BreakerState.HALF_OPEN, BreakerState.CLOSED, opened_at + timedelta(seconds=60)),
    ]


def test_an_unknown_symbol_from_the_primary_is_not_masked_by_the_fallback(
    alpaca_url: str, clock: SimClock, replay: ReplayMarketData
) -> None:
    primary = alpaca(alpaca_url, clock)  # the fake Alpaca has no AIG; the replay has
    service = MarketDataService(primary, replay, clock=clock)
    err = run(clock, [primary], service.quote("AIG", T0))
    assert isinstance(err, NotFound) and err.code == "unknown_symbol"
    assert service.stats().calls == {"alpaca": 1, "replay": 0}
    assert service.stats().breakers["alpaca"] is BreakerState.CLOSED


def test_bad_alpaca_keys_fall_back_to_twelvedata(
    alpaca_url: str, twelvedata_url: str, clock: SimClock
) -> None:
    primary = alpaca(alpaca_url, clock, secret="wrong-secret-0123456789abcdefghijklmn")
    fallback = TwelveDataMarketData(api_key=API_KEY, clock=clock, base_url=twelvedata_url)
    service = MarketDataService(primary, fallback, clock=clock)
    quote = run(clock, [primary, fallback], service.quote("SPY", T0))
    assert (quote.bid, quote.ask, quote.last) == (168.22, 168.22, 168.22)  # TwelveData's close
    assert service.stats().fallbacks == 1


def test_every_provider_down_is_retryable_and_names_each_failure(
    twelvedata_url: str, twelvedata_fake: FakeTwelveData, clock: SimClock
) -> None:
    primary = alpaca(f"http://127.0.0.1:{free_port()}", clock)  # nobody listens
    twelvedata_fake.fail_next(twelvedata_fake.error(429, TD_MINUTE_CREDITS))
    fallback = TwelveDataMarketData(
        api_key=API_KEY, clock=clock, base_url=twelvedata_url, attempts=1
    )
    service = MarketDataService(primary, fallback, clock=clock)
    err = run(clock, [primary, fallback], service.quote("SPY", T0))
    assert isinstance(err, ProvidersDown) and isinstance(err, Retryable)
    assert set(err.failures) == {"alpaca", "twelvedata"}
    assert "ConnectError" in err.failures["alpaca"]
    assert "run out of API credits" in err.failures["twelvedata"]
    assert err.retry_after == 55.0  # TwelveData refills at the next minute: 14:01:00
    assert str(err).startswith("market data down: no provider answered quote('SPY',)")
    assert SECRET not in str(err) and API_KEY not in str(err)


def test_an_open_breaker_with_no_fallback_is_retryable_with_the_wait(
    alpaca_url: str, alpaca_fake: FakeAlpaca, clock: SimClock
) -> None:
    alpaca_fake.fail_next(*[UNAVAILABLE] * 5)
    primary = alpaca(alpaca_url, clock)
    service = MarketDataService(primary, clock=clock)

    async def scenario() -> Any:
        for k in range(5):
            with pytest.raises(ProvidersDown):
                await service.quote("SPY", T0 + timedelta(minutes=k))
        clock.advance_to(T0 + timedelta(seconds=20))
        with pytest.raises(ProvidersDown) as info:
            await service.quote("SPY", T0 + timedelta(minutes=5))
        return info.value

    err = run(clock, [primary], scenario())
    assert err.retry_after == 40.0
    assert "circuit open" in err.failures["alpaca"]
    assert len(alpaca_fake.calls) == 5


def test_a_429_pauses_the_shared_limit_until_the_vendor_reset(
    alpaca_url: str, alpaca_fake: FakeAlpaca, clock: SimClock, replay: ReplayMarketData
) -> None:
    alpaca_fake.fail_next(FakeAlpaca.rate_limited(T0 + timedelta(seconds=42)))
    throttler = Throttler([*ALPACA_DATA_LIMITS, *TWELVEDATA_FREE_LIMITS], clock)
    primary = alpaca(alpaca_url, clock)
    service = MarketDataService(
        primary,
        replay,
        clock=clock,
        throttler=throttler,
        primary_limit=ProviderLimit(ALPACA_LIMIT_ID, {"quote": 2}),
    )
    quote = run(clock, [primary], service.quote("SPY", T0))
    assert quote.symbol == "SPY" and service.stats().fallbacks == 1
    assert throttler.paused_until(ALPACA_LIMIT_ID) == T0 + timedelta(seconds=42)
    assert throttler.usage(ALPACA_LIMIT_ID) == 2
