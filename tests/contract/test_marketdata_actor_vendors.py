"""MarketDataActor (the plain class, no Ray) built from a vendor spec: Alpaca primary and
TwelveData fallback, both loopback servers speaking the vendors' protocols; SimClock time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.marketdata import MarketDataActor, VendorProviders
from engine.clock import SimClock
from tests.contract.sim_driver import drive
from tests.contract.test_alpaca_data import KEY_ID, SECRET
from tests.contract.test_alpaca_data import _seed as seed_alpaca
from tests.contract.test_twelvedata import API_KEY
from tests.contract.test_twelvedata import _seed as seed_twelvedata
from tests.contract.vendor_servers import FakeAlpaca, FakeTwelveData, LoopbackServer, Reply

T0 = datetime(2013, 10, 4, 14, 0, 5, tzinfo=UTC)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def fakes(clock: SimClock) -> Iterator[tuple[FakeAlpaca, FakeTwelveData, VendorProviders]]:
    alpaca, twelvedata = FakeAlpaca(KEY_ID, SECRET), FakeTwelveData(API_KEY)
    seed_alpaca(alpaca)
    seed_twelvedata(twelvedata)
    with LoopbackServer(alpaca) as a, LoopbackServer(twelvedata) as t:
        spec = VendorProviders(
            alpaca_key_id=KEY_ID,
            alpaca_secret_key=SECRET,
            twelvedata_api_key=API_KEY,
            alpaca_url=a.url,
            twelvedata_url=t.url,
            attempts=1,
        )
        yield alpaca, twelvedata, spec


def run(clock: SimClock, actor: MarketDataActor, coro: Any) -> Any:
    async def main() -> Any:
        try:
            return await drive(clock, coro)
        finally:
            await actor.aclose()

    return asyncio.run(main())


def test_alpaca_answers_and_twelvedata_takes_over_when_it_fails(
    fakes: tuple[FakeAlpaca, FakeTwelveData, VendorProviders], clock: SimClock
) -> None:
    alpaca, twelvedata, spec = fakes
    alpaca.fail_next(Reply(502, {"message": "bad gateway"}))
    actor = MarketDataActor(spec, clock=clock)

    async def scenario() -> tuple[Any, Any, dict[str, Any]]:
        from_twelvedata = await actor.quote("SPY", T0)
        again = await actor.quote("SPY", T0)  # cached, whoever answered
        return from_twelvedata, again, await actor.stats()

    answer, again, stats = run(clock, actor, scenario())
    assert (answer.bid, answer.ask, answer.last) == (168.22, 168.22, 168.22)  # TwelveData
    assert again == answer
    assert stats["calls"] == {"alpaca": 1, "twelvedata": 1}
    assert stats["fallbacks"] == 1
    assert (stats["cache_hits"], stats["cache_misses"], stats["hit_rate"]) == (1, 1, 0.5)
    assert stats["breakers"] == {"alpaca": "closed", "twelvedata": "closed"}
    assert [c.path for c in twelvedata.calls] == ["/quote"]


def test_the_spec_never_shows_its_keys(
    fakes: tuple[FakeAlpaca, FakeTwelveData, VendorProviders],
) -> None:
    spec = fakes[2]
    for secret in (KEY_ID, SECRET, API_KEY):
        assert secret not in repr(spec)
