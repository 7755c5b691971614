"""TTL cache: exact expiry on the clock, the as-of-minute keying rule, and a property over
the replay provider: the cached service never answers from the future or another minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.replay import ReplayMarketData
from engine.cache import CacheKey, TtlCache, as_of_minute, cache_key
from engine.clock import ClockError, SimClock
from engine.errors import Rejected
from engine.market_service import MarketDataService
from engine.marketdata import MarketDataPort, OptionContract, Right, Timeframe

T0 = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)
KEY = cache_key("quote", ("SPY",), T0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_as_of_minute_is_the_utc_minute_floor() -> None:
    assert as_of_minute(datetime(2013, 10, 7, 14, 0, 59, 999999, tzinfo=UTC)) == T0
    assert as_of_minute(T0) == T0
    eastern = datetime.fromisoformat("2013-10-07T10:00:30-04:00")
    assert as_of_minute(eastern) == T0
    with pytest.raises(ClockError):
        as_of_minute(datetime(2013, 10, 7, 14, 0))  # naive: refused
    assert cache_key("quote", ("SPY",), at(59.9)) == KEY
    assert cache_key("quote", ("SPY",), at(60)) != KEY


def test_an_entry_expires_exactly_ttl_seconds_after_it_was_stored() -> None:
    cache: TtlCache[str] = TtlCache(ttl_s=60)
    stored_at = T0 + timedelta(hours=1)  # clock time, independent of the as-of time
    cache.put(KEY, "quote", T0, stored_at)
    assert cache.get(KEY, T0, stored_at + timedelta(seconds=60, microseconds=-1)) == "quote"
    assert cache.get(KEY, T0, stored_at + timedelta(seconds=60)) is None
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 0)
    assert cache.hit_rate == 0.5


def test_an_entry_is_never_served_to_an_earlier_as_of() -> None:
    cache: TtlCache[str] = TtlCache()
    cache.put(KEY, "computed at :30", at(30), T0)
    assert cache.get(KEY, at(29.999), T0) is None
    assert cache.get(KEY, at(30), T0) == "computed at :30"
    assert cache.get(KEY, at(59.999), T0) == "computed at :30"
    assert cache.get(cache_key("quote", ("SPY",), at(60)), at(60), T0) is None


def test_an_earlier_answer_replaces_a_later_one_and_not_the_reverse() -> None:
    cache: TtlCache[str] = TtlCache()
    cache.put(KEY, "at :30", at(30), T0)
    cache.put(KEY, "at :10", at(10), T0)
    assert cache.get(KEY, at(10), T0) == "at :10"
    cache.put(KEY, "at :40", at(40), T0)
    assert cache.get(KEY, at(45), T0) == "at :10"


def test_the_oldest_entries_leave_first_when_full() -> None:
    cache: TtlCache[int] = TtlCache(ttl_s=60, max_entries=3)
    keys = [cache_key("quote", (s,), T0) for s in ("A", "B", "C", "D")]
    for n, key in enumerate(keys):
        cache.put(key, n, T0, T0)
    assert len(cache) == 3
    assert cache.get(keys[0], T0, T0) is None
    assert [cache.get(k, T0, T0) for k in keys[1:]] == [1, 2, 3]


def test_expired_entries_are_dropped_when_storing() -> None:
    cache: TtlCache[int] = TtlCache(ttl_s=60)
    cache.put(cache_key("quote", ("A",), T0), 1, T0, T0)
    cache.put(cache_key("quote", ("B",), T0), 2, T0, at(60))
    assert len(cache) == 1


def test_a_zero_ttl_caches_nothing() -> None:
    cache: TtlCache[int] = TtlCache(ttl_s=0)
    cache.put(KEY, 1, T0, T0)
    assert cache.get(KEY, T0, T0) is None and len(cache) == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        TtlCache(ttl_s=-1)
    with pytest.raises(ValueError, match="max_entries"):
        TtlCache(max_entries=0)


# --- property: the cached service against the replay provider ---------------------------
#
# Anchor minutes are where visibility changes: the open (the first bar is visible one minute
# after it) and the close (the last minute bar and the session's daily bar become visible).
# Recorded GOOG option quotes carry an implied vol computed from the exact as_of, so they
# also show an answer computed for a later second of the same minute.

Ask = Callable[[MarketDataPort, datetime], Awaitable[Any]]
SPY_ANCHORS = [datetime(2013, 10, 7, h, m, tzinfo=UTC) for h, m in ((13, 30), (13, 31), (13, 32))]
SPY_ANCHORS += [datetime(2013, 10, 7, h, m, tzinfo=UTC) for h, m in ((19, 59), (20, 0), (20, 1))]
GOOG_ANCHORS = [datetime(2015, 12, 24, h, m, tzinfo=UTC) for h, m in ((14, 30), (14, 31))]
GOOG_ANCHORS += [datetime(2015, 12, 24, h, m, tzinfo=UTC) for h, m in ((15, 2), (17, 59), (18, 0))]
SPY_CONTRACT = OptionContract("SPY", date(2013, 10, 18), 170.0, Right.CALL)
GOOG_CONTRACT = OptionContract("GOOG", date(2015, 12, 24), 750.0, Right.CALL)
SPY_REQUESTS: dict[str, Ask] = {
    "quote": lambda p, t: p.quote("SPY", t),
    "bars_open": lambda p, t: p.bars(
        "SPY", Timeframe.MINUTE, SPY_ANCHORS[0] - timedelta(minutes=3), SPY_ANCHORS[2], t
    ),
    "bars_close": lambda p, t: p.bars(
        "SPY", Timeframe.MINUTE, SPY_ANCHORS[3] - timedelta(minutes=3), SPY_ANCHORS[5], t
    ),
    "bars_daily": lambda p, t: p.bars(
        "SPY",
        Timeframe.DAY,
        datetime(2013, 9, 30, tzinfo=UTC),
        datetime(2013, 10, 9, tzinfo=UTC),
        t,
    ),
    "chain": lambda p, t: p.option_chain("SPY", date(2013, 10, 11), t),
    "option_quote": lambda p, t: p.option_quote(SPY_CONTRACT, t),
}
GOOG_REQUESTS: dict[str, Ask] = {
    "quote": lambda p, t: p.quote("GOOG", t),
    "bars": lambda p, t: p.bars("GOOG", Timeframe.MINUTE, GOOG_ANCHORS[0], GOOG_ANCHORS[4], t),
    "chain": lambda p, t: p.option_chain("GOOG", date(2016, 1, 15), t),
    "option_quote": lambda p, t: p.option_quote(GOOG_CONTRACT, t),
}
# Answers that depend on the visible data only: equal to the provider's at the same as_of.
VISIBILITY_ONLY = {"quote", "bars", "bars_open", "bars_close", "bars_daily"}


@pytest.fixture(scope="module")
def spy() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture(scope="module")
def goog() -> ReplayMarketData:
    return ReplayMarketData("goog-2015-12-24")


async def outcome(awaitable: Awaitable[Any]) -> Any:
    """The answer, or (error type, code) for a rejection (errors are never cached)."""
    try:
        return await awaitable
    except Rejected as exc:
        return (type(exc).__name__, exc.code)


def requests_st(asks: dict[str, Ask], anchors: list[datetime]) -> Any:
    one = st.tuples(
        st.sampled_from(sorted(asks)),
        st.sampled_from(anchors),
        st.integers(min_value=0, max_value=59_999_999),  # microseconds into the minute
        st.sampled_from([0, 0, 5, 30, 61]),  # clock seconds that pass before the request
    )
    return st.lists(one, min_size=1, max_size=15)


def check_against_provider(
    replay: ReplayMarketData, asks: dict[str, Ask], requests: list[tuple[str, datetime, int, int]]
) -> None:
    """Each answer is the provider's answer at an as_of asked before (or now), in the same
    minute and not after the request's: never from the future, never another minute."""

    async def check() -> None:
        clock = SimClock(T0 + timedelta(days=3000))
        service = MarketDataService(replay, clock=clock)
        direct: dict[tuple[str, datetime], Any] = {}
        asked: dict[tuple[str, datetime], list[datetime]] = {}

        async def provider(name: str, as_of: datetime) -> Any:
            if (name, as_of) not in direct:
                direct[name, as_of] = await outcome(asks[name](replay, as_of))
            return direct[name, as_of]

        for name, minute, micros, wait_s in requests:
            clock.advance_to(clock.now() + timedelta(seconds=wait_s))
            as_of = minute + timedelta(microseconds=micros)
            answer = await outcome(asks[name](service, as_of))
            seen = asked.setdefault((name, minute), [])
            seen.append(as_of)
            assert answer in [await provider(name, s) for s in seen if s <= as_of]
            if name in VISIBILITY_ONLY:
                assert answer == await provider(name, as_of)

    asyncio.run(check())


@given(requests_st(SPY_REQUESTS, SPY_ANCHORS))
def test_cached_spy_answers_come_from_the_same_minute_and_never_later(
    spy: ReplayMarketData, requests: list[tuple[str, datetime, int, int]]
) -> None:
    check_against_provider(spy, SPY_REQUESTS, requests)


@given(requests_st(GOOG_REQUESTS, GOOG_ANCHORS))
def test_cached_goog_answers_come_from_the_same_minute_and_never_later(
    goog: ReplayMarketData, requests: list[tuple[str, datetime, int, int]]
) -> None:
    check_against_provider(goog, GOOG_REQUESTS, requests)


def test_the_next_minute_sees_the_newly_visible_bar(spy: ReplayMarketData) -> None:
    async def check() -> None:
        service = MarketDataService(spy, clock=SimClock(T0))
        window = (SPY_ANCHORS[3] - timedelta(minutes=3), SPY_ANCHORS[5])
        last_second = SPY_ANCHORS[4] - timedelta(seconds=1)
        before = await service.bars("SPY", Timeframe.MINUTE, *window, last_second)
        after = await service.bars("SPY", Timeframe.MINUTE, *window, SPY_ANCHORS[4])
        assert len(after) == len(before) + 1
        assert after[-1].ts == SPY_ANCHORS[3]  # the 19:59 bar, visible from 20:00
        assert service.stats().cache_hits == 0

    asyncio.run(check())


def test_cache_key_is_a_value() -> None:
    assert CacheKey("quote", ("SPY",), T0) == KEY
