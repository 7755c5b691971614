"""The Ticker's loop on a simulated clock: ticks follow simulated time, failures are contained."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.clock import LocalClock
from actors.ticker import Ticker
from engine.clock import SimClock

START = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)


class _Method:
    """What an actor handle's method offers the Ticker: `.remote(...)` gives an awaitable."""

    def __init__(self, fn: Callable[[datetime], Awaitable[Any]]) -> None:
        self._fn = fn

    def remote(self, now: datetime) -> Awaitable[Any]:
        return self._fn(now)


class Worker:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[datetime] = []
        self.fail = fail
        self.tick = _Method(self._tick)

    async def _tick(self, now: datetime) -> dict[str, int]:
        self.seen.append(now)
        if self.fail:
            raise RuntimeError("worker down")
        return {}


async def settle() -> None:
    """Let every runnable coroutine run up to its next wait on the simulated clock."""
    for _ in range(100):
        await asyncio.sleep(0)


def test_ticks_follow_simulated_time_and_stop_ends_the_loop() -> None:
    async def scenario() -> tuple[int, list[datetime], list[datetime]]:
        clock = SimClock(START)
        good, bad = Worker(), Worker(fail=True)
        ticker = Ticker(LocalClock(clock), [bad, good], interval_s=5.0)
        loop = asyncio.create_task(ticker.run())
        await settle()
        assert await ticker.run() == 0  # a second loop is never started
        for seconds in (5, 10, 12):
            await clock.advance_to_async(START + timedelta(seconds=seconds))
            await settle()
        await ticker.stop()
        ticks = await asyncio.wait_for(loop, timeout=10)
        return ticks, good.seen, bad.seen

    ticks, good, bad = asyncio.run(scenario())
    expected = [START + timedelta(seconds=s) for s in (0, 5, 10)]
    assert good == expected and bad == expected  # a failing worker stops nobody
    assert ticks == 3


def test_tick_once_sends_the_clock_time_to_every_target() -> None:
    async def scenario() -> tuple[datetime, list[datetime]]:
        clock = SimClock(START)
        worker = Worker()
        ticker = Ticker(LocalClock(clock), [worker], interval_s=60.0, names=["w"])
        clock.advance_to(START + timedelta(minutes=3))
        return await ticker.tick_once(), worker.seen

    now, seen = asyncio.run(scenario())
    assert now == START + timedelta(minutes=3) and seen == [now]
