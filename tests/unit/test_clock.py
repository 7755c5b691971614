from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.clock import Clock, ClockError, LiveClock, SimClock

T0 = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)


def test_both_clocks_satisfy_the_port() -> None:
    assert isinstance(LiveClock(), Clock)
    assert isinstance(SimClock(T0), Clock)
    assert LiveClock().now().tzinfo is not None


def test_time_never_moves_backwards() -> None:
    clock = SimClock(T0)
    clock.advance_to(T0 + timedelta(seconds=5))
    with pytest.raises(ClockError, match="backwards"):
        clock.advance_to(T0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ClockError, match="naive"):
        SimClock(datetime(2013, 10, 7, 9, 30))


def test_deadlines_fire_in_time_order_with_now_at_each_deadline() -> None:
    clock = SimClock(T0)
    seen: list[tuple[str, datetime]] = []
    clock.call_later(3, lambda: seen.append(("c", clock.now())))
    clock.call_later(1, lambda: seen.append(("a", clock.now())))
    clock.call_later(2, lambda: seen.append(("b", clock.now())))
    cancelled = clock.call_later(1.5, lambda: seen.append(("x", clock.now())))
    cancelled.cancel()
    assert clock.next_deadline() == T0 + timedelta(seconds=1)
    fired = clock.advance_to(T0 + timedelta(seconds=2))
    assert fired == 2
    assert seen == [("a", T0 + timedelta(seconds=1)), ("b", T0 + timedelta(seconds=2))]
    assert clock.now() == T0 + timedelta(seconds=2)
    assert clock.pending() == 1


def test_next_time_is_the_earlier_of_event_and_deadline() -> None:
    clock = SimClock(T0)
    assert clock.next_time(None) is None
    assert clock.next_time(T0 + timedelta(seconds=60)) == T0 + timedelta(seconds=60)
    clock.call_later(4, lambda: None)
    assert clock.next_time(T0 + timedelta(seconds=60)) == T0 + timedelta(seconds=4)
    assert clock.next_time(T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1)


def test_a_back_off_loop_runs_in_simulated_time_without_waiting() -> None:
    async def scenario() -> list[float]:
        clock = SimClock(T0)
        attempts: list[float] = []

        async def retrying() -> None:
            for delay in (1, 2, 4):
                attempts.append((clock.now() - T0).total_seconds())
                await clock.sleep(delay)
            attempts.append((clock.now() - T0).total_seconds())

        task = asyncio.create_task(retrying())
        await asyncio.sleep(0)
        await clock.run_until_idle()
        await task
        return attempts

    assert asyncio.run(scenario()) == [0.0, 1.0, 3.0, 7.0]


def test_a_data_event_between_deadlines_is_reached_first() -> None:
    async def scenario() -> list[str]:
        clock = SimClock(T0)
        log: list[str] = []

        async def sleeper() -> None:
            await clock.sleep(10)
            log.append(f"woke at {(clock.now() - T0).total_seconds():.0f}")

        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        for event_at in (T0 + timedelta(seconds=5), T0 + timedelta(seconds=15)):
            target = clock.next_time(event_at)
            assert target is not None
            await clock.advance_to_async(target)
            log.append(f"at {(clock.now() - T0).total_seconds():.0f}")
            if target < event_at:
                await clock.advance_to_async(event_at)
                log.append(f"at {(clock.now() - T0).total_seconds():.0f}")
        await task
        return log

    assert asyncio.run(scenario()) == ["at 5", "woke at 10", "at 10", "at 15"]


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_deadlines_always_fire_sorted_and_now_never_decreases(delays: list[float]) -> None:
    clock = SimClock(T0)
    fired: list[datetime] = []
    for d in delays:
        clock.call_later(d, lambda: fired.append(clock.now()))
    clock.advance_to(T0 + timedelta(seconds=max(delays) + 1))
    assert fired == sorted(fired)
    assert len(fired) == len(delays)
    assert clock.now() >= fired[-1]
