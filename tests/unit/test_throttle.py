"""Throttler: sliding windows, linked limits, FIFO waiting, pauses, usage warnings.

Time is a `SimClock`; nothing sleeps for real. The async properties compare every grant
time with an independent offline model (`_reference_grants`) and also check the three
invariants directly on the observed grant log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.alpaca_data import ALPACA_DATA_LIMITS, ALPACA_LIMIT_ID
from engine.adapters.twelvedata import (
    TWELVEDATA_DAY_LIMIT_ID,
    TWELVEDATA_FREE_LIMITS,
    TWELVEDATA_LIMIT_ID,
)
from engine.clock import SimClock
from engine.errors import RateLimited
from engine.throttle import LinkedLimit, RateLimit, RateWindows, Throttler

T = TypeVar("T")
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
WindowLog = list[tuple[datetime, int]]

# "a" and "b" share the "day" window (b pays double into it); "solo" shares nothing.
LIMITS = (
    RateLimit("a", 3, 2.0, linked=(LinkedLimit("day", 1),)),
    RateLimit("b", 2, 1.0, linked=(LinkedLimit("day", 2),)),
    RateLimit("day", 10, 10.0),
    RateLimit("solo", 2, 1.5),
)
BY_ID = {lim.limit_id: lim for lim in LIMITS}


def _charges(limit_id: str, weight: int) -> list[tuple[str, int]]:
    own = BY_ID[limit_id]
    return [(limit_id, weight)] + [(k.limit_id, weight * k.weight) for k in own.linked]


@dataclass(frozen=True)
class Req:
    at: datetime
    limit_id: str
    weight: int


def _with_times(raw: list[tuple[int, str, int]]) -> list[Req]:
    out, t = [], T0
    for gap_ms, limit_id, weight in raw:
        t += timedelta(milliseconds=gap_ms)
        out.append(Req(t, limit_id, weight))
    return out


requests_st = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=1500),  # gap in ms after the previous request
        st.sampled_from(["a", "b", "day", "solo"]),
        st.integers(min_value=1, max_value=2),
    ),
    min_size=1,
    max_size=25,
).map(_with_times)


# --- independent checks over a grant log ---------------------------------------------


def _window_log(grants: Sequence[tuple[datetime, Req]], window_id: str) -> WindowLog:
    return [
        (t, charge)
        for t, req in grants
        for w, charge in _charges(req.limit_id, req.weight)
        if w == window_id
    ]


def _assert_windows_respected(grants: Sequence[tuple[datetime, Req]]) -> None:
    """In every window [t, t + interval) starting at a grant, the weight is within the limit."""
    for lim in LIMITS:
        log = _window_log(grants, lim.limit_id)
        interval = timedelta(seconds=lim.interval_s)
        for start, _ in log:
            inside = sum(c for t, c in log if start <= t < start + interval)
            assert inside <= lim.limit, (lim.limit_id, start, inside)


def _fits(log_by_window: dict[str, WindowLog], req: Req, t: datetime) -> bool:
    for window_id, charge in _charges(req.limit_id, req.weight):
        interval = timedelta(seconds=BY_ID[window_id].interval_s)
        used = sum(c for g, c in log_by_window.get(window_id, []) if t - interval < g <= t)
        if used + charge > BY_ID[window_id].limit:
            return False
    return True


def _shares(x: Req, y: Req) -> bool:
    return bool({w for w, _ in _charges(x.limit_id, 1)} & {w for w, _ in _charges(y.limit_id, 1)})


def _reference_grants(reqs: Sequence[Req]) -> list[datetime]:
    """Offline model: each request is granted at the earliest time at or after its arrival
    and its earlier window-sharers' grants at which its charges fit the earlier grants."""
    granted: list[datetime] = []
    for i, req in enumerate(reqs):
        earlier = [(granted[k], reqs[k]) for k in range(i) if _shares(reqs[k], req)]
        lower = max([req.at] + [g for g, _ in earlier])
        logs = {lim.limit_id: _window_log(earlier, lim.limit_id) for lim in LIMITS}
        expiries = sorted(
            g + timedelta(seconds=BY_ID[w].interval_s) for w, log in logs.items() for g, _ in log
        )
        candidates = [lower] + [e for e in expiries if e > lower]
        granted.append(next(t for t in candidates if _fits(logs, req, t)))
    return granted


# --- driving asyncio on the sim clock -------------------------------------------------


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _drain(clock: SimClock) -> None:
    await _settle()
    while (due := clock.next_deadline()) is not None:
        await clock.advance_to_async(due)
        await _settle()


async def _run_sim(clock: SimClock, awaitable: Awaitable[T]) -> T:
    task = asyncio.ensure_future(awaitable)
    await _drain(clock)
    assert task.done(), "still waiting with no deadline left on the clock"
    return task.result()


class Recorder:
    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.grants: list[tuple[str, int, datetime, float]] = []
        self.usage: list[tuple[str, int, int]] = []

    def on_grant(self, limit_id: str, weight: int, waited_s: float) -> None:
        self.grants.append((limit_id, weight, self.clock.now(), waited_s))

    def on_usage(self, limit_id: str, used: int, limit: int) -> None:
        self.usage.append((limit_id, used, limit))


async def _play(reqs: Sequence[Req]) -> tuple[list[datetime], list[int]]:
    """Each request arrives at its time; returns grant times and grant order."""
    clock = SimClock(T0)
    throttler = Throttler(LIMITS, clock, max_queue=1_000)
    granted: dict[int, datetime] = {}
    order: list[int] = []

    async def one(i: int, req: Req) -> None:
        await throttler.acquire(req.limit_id, req.weight)
        granted[i] = clock.now()
        order.append(i)

    tasks = []
    for i, req in enumerate(reqs):
        await clock.advance_to_async(req.at)
        await _settle()
        tasks.append(asyncio.create_task(one(i, req)))
        await _settle()
    await _drain(clock)
    await asyncio.gather(*tasks)
    return [granted[i] for i in range(len(reqs))], order


# --- properties ------------------------------------------------------------------------


@given(requests_st)
def test_grants_match_the_offline_model_and_keep_every_invariant(reqs: list[Req]) -> None:
    granted, order = asyncio.run(_play(reqs))
    assert granted == _reference_grants(reqs)

    log = list(zip(granted, reqs, strict=True))
    _assert_windows_respected(log)

    position = {i: p for p, i in enumerate(order)}
    for j in range(len(reqs)):
        for i in range(j):
            if _shares(reqs[i], reqs[j]):
                assert position[i] < position[j], f"request {j} overtook {i}"

    for j, req in enumerate(reqs):
        earlier = [(granted[k], reqs[k]) for k in range(j)]
        nobody_waiting = all(g <= req.at for g, r in earlier if _shares(r, req))
        logs = {lim.limit_id: _window_log(earlier, lim.limit_id) for lim in LIMITS}
        if nobody_waiting and _fits(logs, req, req.at):
            assert granted[j] == req.at, f"request {j} waited although capacity was free"


@given(requests_st)
def test_pure_windows_grant_exactly_when_capacity_is_free(reqs: list[Req]) -> None:
    windows = RateWindows(LIMITS)
    grants: list[tuple[datetime, Req]] = []
    for req in reqs:
        logs = {lim.limit_id: _window_log(grants, lim.limit_id) for lim in LIMITS}
        free_now = _fits(logs, req, req.at)
        answer = windows.try_grant(req.limit_id, req.weight, req.at)
        assert (answer is None) == free_now
        if answer is None:
            grants.append((req.at, req))
        else:
            # the answer is the first instant it fits: it fits then, and not a microsecond before
            assert _fits(logs, req, answer)
            assert not _fits(logs, req, answer - timedelta(microseconds=1))
    _assert_windows_respected(grants)
    for lim in LIMITS:
        end = reqs[-1].at
        expected = sum(
            c
            for t, c in _window_log(grants, lim.limit_id)
            if end - timedelta(seconds=lim.interval_s) < t <= end
        )
        assert windows.used(lim.limit_id, end) == expected


# --- examples with vendor limits -------------------------------------------------------


def test_alpaca_201st_request_waits_for_the_first_grant_to_expire() -> None:
    async def scenario() -> tuple[datetime, int]:
        clock = SimClock(T0)
        throttler = Throttler(ALPACA_DATA_LIMITS, clock, max_queue=10)
        for _ in range(200):
            await throttler.acquire(ALPACA_LIMIT_ID)
        assert clock.now() == T0
        await _run_sim(clock, throttler.acquire(ALPACA_LIMIT_ID))
        return clock.now(), throttler.usage(ALPACA_LIMIT_ID)

    granted_at, used = asyncio.run(scenario())
    assert granted_at == T0 + timedelta(seconds=60)
    assert used == 1  # the first 200 left the window as the 201st came in


def test_twelvedata_minute_and_day_windows_are_both_charged() -> None:
    async def scenario() -> list[datetime]:
        clock = SimClock(T0)
        throttler = Throttler(TWELVEDATA_FREE_LIMITS, clock, max_queue=1_000)
        times: list[datetime] = []

        async def one() -> None:
            await throttler.acquire(TWELVEDATA_LIMIT_ID)
            times.append(clock.now())

        tasks = [asyncio.create_task(one()) for _ in range(801)]
        await _drain(clock)
        await asyncio.gather(*tasks)
        # at T0 + 1 day the 8 grants of T0 have left the day window: 792 + the new one
        assert throttler.usage(TWELVEDATA_DAY_LIMIT_ID) == 793
        return times

    times = asyncio.run(scenario())
    # 8 a minute for 100 minutes uses the 800 daily credits ...
    assert times[:8] == [T0] * 8
    assert times[8] == T0 + timedelta(minutes=1)
    assert times[799] == T0 + timedelta(minutes=99)
    # ... and the 801st waits until the first 8 leave the day window.
    assert times[800] == T0 + timedelta(days=1)


def test_pause_holds_requests_until_the_vendor_reset_including_linked_ones() -> None:
    async def scenario() -> tuple[datetime, datetime, datetime | None]:
        clock = SimClock(T0)
        throttler = Throttler(TWELVEDATA_FREE_LIMITS, clock)
        reset = T0 + timedelta(seconds=37)
        throttler.pause(TWELVEDATA_DAY_LIMIT_ID, reset)
        paused = throttler.paused_until(TWELVEDATA_DAY_LIMIT_ID)
        await _run_sim(clock, throttler.acquire(TWELVEDATA_LIMIT_ID))  # charges the day too
        first = clock.now()
        throttler.pause(TWELVEDATA_LIMIT_ID, first - timedelta(seconds=5))  # in the past: no-op
        await throttler.acquire(TWELVEDATA_LIMIT_ID)
        return first, clock.now(), paused

    first, second, paused = asyncio.run(scenario())
    assert paused == T0 + timedelta(seconds=37)
    assert first == T0 + timedelta(seconds=37)
    assert second == first


def test_pause_while_waiting_moves_the_wake_up_later() -> None:
    async def scenario() -> datetime:
        clock = SimClock(T0)
        throttler = Throttler([RateLimit("x", 1, 10.0)], clock)
        await throttler.acquire("x")
        task = asyncio.create_task(throttler.acquire("x"))
        await _settle()
        throttler.pause("x", T0 + timedelta(seconds=25))
        await _run_sim(clock, task)
        return clock.now()

    assert asyncio.run(scenario()) == T0 + timedelta(seconds=25)


def test_a_full_queue_raises_rate_limited() -> None:
    async def scenario() -> RateLimited:
        clock = SimClock(T0)
        throttler = Throttler([RateLimit("x", 1, 10.0)], clock, max_queue=2)
        await throttler.acquire("x")
        waiting = [asyncio.create_task(throttler.acquire("x")) for _ in range(2)]
        await _settle()
        assert throttler.waiting == 2
        with pytest.raises(RateLimited) as info:
            await throttler.acquire("x")
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        return info.value

    err = asyncio.run(scenario())
    assert err.code == "rate_limited"
    assert err.status == 429
    assert err.detail == {"limit_id": "x", "waiting": 2}
    assert err.retry_after == 10.0


def test_max_queue_zero_never_waits() -> None:
    async def scenario() -> None:
        throttler = Throttler([RateLimit("x", 1, 1.0)], SimClock(T0), max_queue=0)
        await throttler.acquire("x")
        with pytest.raises(RateLimited):
            await throttler.acquire("x")

    asyncio.run(scenario())


def test_a_cancelled_waiter_does_not_block_the_ones_behind_it() -> None:
    async def scenario() -> tuple[datetime, int]:
        clock = SimClock(T0)
        throttler = Throttler([RateLimit("x", 1, 10.0)], clock)
        await throttler.acquire("x")
        first = asyncio.create_task(throttler.acquire("x"))
        second = asyncio.create_task(throttler.acquire("x"))
        await _settle()
        first.cancel()
        await _run_sim(clock, second)
        assert first.cancelled()
        return clock.now(), throttler.waiting

    granted_at, waiting = asyncio.run(scenario())
    assert granted_at == T0 + timedelta(seconds=10)
    assert waiting == 0


def test_a_small_request_does_not_overtake_a_big_one_waiting_on_the_same_window() -> None:
    async def scenario() -> list[tuple[str, datetime]]:
        clock = SimClock(T0)
        throttler = Throttler([RateLimit("x", 3, 10.0)], clock)
        seen: list[tuple[str, datetime]] = []

        async def one(name: str, weight: int) -> None:
            await throttler.acquire("x", weight)
            seen.append((name, clock.now()))

        await one("first", 2)
        big = asyncio.create_task(one("big", 3))
        await _settle()
        small = asyncio.create_task(one("small", 1))  # would fit now (2 + 1 <= 3), must queue
        await _drain(clock)
        await asyncio.gather(big, small)
        return seen

    seen = asyncio.run(scenario())
    assert seen == [
        ("first", T0),
        ("big", T0 + timedelta(seconds=10)),
        ("small", T0 + timedelta(seconds=20)),
    ]


def test_usage_warning_fires_at_ninety_percent() -> None:
    async def scenario() -> Recorder:
        clock = SimClock(T0)
        recorder = Recorder(clock)
        throttler = Throttler([RateLimit("x", 10, 60.0)], clock, observer=recorder)
        for _ in range(10):
            await throttler.acquire("x")
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.usage == [("x", 9, 10), ("x", 10, 10)]
    assert [g[:2] for g in recorder.grants] == [("x", 1)] * 10
    assert all(g[3] == 0.0 for g in recorder.grants)


def test_usage_warning_reports_linked_windows_and_wait_time() -> None:
    async def scenario() -> Recorder:
        clock = SimClock(T0)
        recorder = Recorder(clock)
        limits = [
            RateLimit("minute", 1, 60.0, linked=(LinkedLimit("day", 5),)),
            RateLimit("day", 10, 86_400.0),
        ]
        throttler = Throttler(limits, clock, observer=recorder)
        await throttler.acquire("minute")
        await _run_sim(clock, throttler.acquire("minute"))
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.usage == [("minute", 1, 1), ("minute", 1, 1), ("day", 10, 10)]
    assert [g[3] for g in recorder.grants] == [0.0, 60.0]


def test_usage_counts_the_sliding_window() -> None:
    async def scenario() -> list[int]:
        clock = SimClock(T0)
        throttler = Throttler([RateLimit("x", 10, 60.0)], clock)
        await throttler.acquire("x", 3)
        clock.advance_to(T0 + timedelta(seconds=30))
        await throttler.acquire("x", 2)
        seen = [throttler.usage("x")]
        clock.advance_to(T0 + timedelta(seconds=60))
        seen.append(throttler.usage("x"))
        clock.advance_to(T0 + timedelta(seconds=90))
        seen.append(throttler.usage("x"))
        return seen

    assert asyncio.run(scenario()) == [5, 2, 0]


def test_bad_configuration_and_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        RateWindows([RateLimit("x", 1, 1.0), RateLimit("x", 2, 1.0)])
    with pytest.raises(ValueError, match="unknown"):
        RateWindows([RateLimit("x", 1, 1.0, linked=(LinkedLimit("nope"),))])
    with pytest.raises(ValueError):
        RateLimit("x", 0, 1.0)
    with pytest.raises(ValueError):
        RateLimit("x", 1, 0.0)
    with pytest.raises(ValueError):
        LinkedLimit("x", 0)
    windows = RateWindows(LIMITS)
    with pytest.raises(ValueError, match="unknown"):
        windows.try_grant("nope", 1, T0)
    with pytest.raises(ValueError, match="never fit"):
        windows.try_grant("a", 4, T0)  # own limit is 3
    with pytest.raises(ValueError, match="never fit"):
        windows.try_grant("day", 11, T0)
    with pytest.raises(ValueError, match=">= 1"):
        windows.try_grant("a", 0, T0)
