"""The MarketData and Throttler actors on the session's local Ray (num_cpus=0 each).

Answers are compared with the replay provider called directly in the test process.
Every actor a test starts is killed at its end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from actors.marketdata import ReplayProviders
from actors.throttler import Grant
from engine.adapters.replay import ReplayMarketData
from engine.errors import RateLimited
from engine.marketdata import Timeframe
from engine.throttle import RateLimit
from tests.integration.conftest import RAY_TIMEOUT_S, RaySession

AS_OF = datetime(2013, 10, 7, 14, 0, 30, tzinfo=UTC)
MINUTE = AS_OF.replace(second=0)
EXPIRY = date(2013, 10, 11)


def requests(handle: Any, as_of: datetime) -> list[Any]:
    """quote, the last 60 minute bars, ~200 daily bars and the nearest chain, as refs."""
    return [
        handle.quote.remote("SPY", as_of),
        handle.bars.remote("SPY", Timeframe.MINUTE, MINUTE - timedelta(minutes=60), MINUTE, as_of),
        handle.bars.remote("SPY", Timeframe.DAY, MINUTE - timedelta(days=290), MINUTE, as_of),
        handle.option_chain.remote("SPY", EXPIRY, as_of),
    ]


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture
def kill_after() -> Iterator[list[Any]]:
    import ray

    handles: list[Any] = []
    yield handles
    for handle in handles:
        ray.kill(handle)


def test_marketdata_actor_answers_like_the_provider_and_caches(
    ray_session: RaySession, replay: ReplayMarketData, kill_after: list[Any]
) -> None:
    import ray

    from actors.system import start_marketdata

    actor = start_marketdata(ReplayProviders("spy-2013-10"), name="test-marketdata")
    kill_after.append(actor)
    first = ray.get(requests(actor, AS_OF), timeout=RAY_TIMEOUT_S)
    again = ray.get(requests(actor, AS_OF + timedelta(seconds=20)), timeout=RAY_TIMEOUT_S)

    async def direct() -> list[Any]:
        return [
            await replay.quote("SPY", AS_OF),
            await replay.bars(
                "SPY", Timeframe.MINUTE, MINUTE - timedelta(minutes=60), MINUTE, AS_OF
            ),
            await replay.bars("SPY", Timeframe.DAY, MINUTE - timedelta(days=290), MINUTE, AS_OF),
            await replay.option_chain("SPY", EXPIRY, AS_OF),
        ]

    expected = asyncio.run(direct())
    assert first == expected and again == expected
    assert len(expected[1]) == 60 and len(expected[2]) > 190 and len(expected[3]) > 50
    stats = ray.get(actor.stats.remote(), timeout=RAY_TIMEOUT_S)
    assert (stats["cache_hits"], stats["cache_misses"], stats["hit_rate"]) == (4, 4, 0.5)
    assert stats["calls"] == {"replay": 4}
    assert stats["breakers"] == {"replay": "closed"}


def test_marketdata_actor_charges_the_throttler_actor(
    ray_session: RaySession, kill_after: list[Any]
) -> None:
    import ray

    from actors.system import start_marketdata, start_throttler

    throttler = start_throttler([RateLimit("replay", 100, 60.0)], name="test-throttler-md")
    kill_after.append(throttler)
    actor = start_marketdata(
        ReplayProviders(limit_id="replay"), throttler, name="test-marketdata-throttled"
    )
    kill_after.append(actor)
    ray.get(requests(actor, AS_OF), timeout=RAY_TIMEOUT_S)
    ray.get(actor.quote.remote("SPY", AS_OF), timeout=RAY_TIMEOUT_S)  # a hit: not charged
    usage = ray.get(throttler.usage.remote("replay"), timeout=RAY_TIMEOUT_S)
    stats = ray.get(actor.stats.remote(), timeout=RAY_TIMEOUT_S)
    assert usage["used"] == stats["calls"]["replay"] == 4
    assert usage["limit"] == 100


def test_throttler_actor_grants_concurrent_callers_first_come_first_served(
    ray_session: RaySession, kill_after: list[Any]
) -> None:
    import ray

    from actors.system import start_throttler

    throttler = start_throttler([RateLimit("fifo", 10, 1.0)], name="test-throttler-fifo")
    kill_after.append(throttler)
    # Paused for 2 s: callers queue, then are granted together, in arrival order.
    until = datetime.now(UTC) + timedelta(seconds=2)
    ray.get(throttler.pause.remote("fifo", until), timeout=RAY_TIMEOUT_S)
    grants: list[Grant] = ray.get(
        [throttler.acquire.remote("fifo") for _ in range(6)], timeout=RAY_TIMEOUT_S
    )
    by_arrival = sorted(grants, key=lambda g: g.ticket)
    assert [g.order for g in by_arrival] == [g.ticket for g in by_arrival] == list(range(1, 7))
    assert any(g.waited_s > 0 for g in grants)
    usage = ray.get(throttler.usage.remote("fifo"), timeout=RAY_TIMEOUT_S)
    assert usage["waiting"] == 0 and usage["used"] <= 10


def test_a_full_throttler_queue_raises_rate_limited_through_ray(
    ray_session: RaySession, kill_after: list[Any]
) -> None:
    import ray

    from actors.system import start_throttler

    throttler = start_throttler(
        [RateLimit("tight", 1, 3600.0)], name="test-throttler-full", max_queue=2
    )
    kill_after.append(throttler)
    ray.get(throttler.acquire.remote("tight"), timeout=RAY_TIMEOUT_S)  # the hour's one grant
    pending = [throttler.acquire.remote("tight") for _ in range(3)]
    ready, waiting = ray.wait(pending, num_returns=1, timeout=RAY_TIMEOUT_S)
    assert len(ready) == 1 and len(waiting) == 2  # two queue, one is refused
    with pytest.raises(RateLimited) as info:
        ray.get(ready[0], timeout=RAY_TIMEOUT_S)
    err = info.value
    assert err.code == "rate_limited"
    assert err.detail == {"limit_id": "tight", "waiting": 2}
    assert err.retry_after is not None and 3500 < err.retry_after <= 3600
    assert ray.get(throttler.waiting.remote(), timeout=RAY_TIMEOUT_S) == 2


def test_a_throttler_near_its_limit_writes_a_warning_event(api: Any) -> None:
    import ray

    from actors.system import start_throttler, store_handle

    store = store_handle()
    throttler = start_throttler(
        [RateLimit("warned", 10, 3600.0)], name="test-throttler-warn", store=store
    )
    try:
        ray.get([throttler.acquire.remote("warned") for _ in range(9)], timeout=RAY_TIMEOUT_S)
        sql = "SELECT payload FROM events WHERE kind = 'rate_limit_warning' AND entity_id = ?"
        deadline = time.monotonic() + 30
        rows: list[Any] = []
        while not rows and time.monotonic() < deadline:
            rows = ray.get(store.query.remote(sql, ["warned"]), timeout=RAY_TIMEOUT_S).to_pylist()
            time.sleep(0.2)
        assert len(rows) == 1  # once, not once per grant above 90 %
        assert json.loads(rows[0]["payload"]) == {"limit_id": "warned", "used": 9, "limit": 10}
    finally:
        ray.kill(throttler)
