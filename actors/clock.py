"""The clock every actor reads in a run: the wall clock live, one shared SimClock in replay.

`ClockActor` holds it. A replay driver moves simulated time with `advance_to`; waits on
the clock (`sleep`: retry back-offs) wake when time passes their deadline, never in real
time. Actors reach it through a `ClockLink`, which is a plain local clock when there is
no actor to ask (unit tests, the live wall clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Protocol

from engine.clock import Clock, LiveClock, SimClock
from engine.errors import Rejected

log = logging.getLogger(__name__)


class ClockActor:
    def __init__(self, sim_start: datetime | None = None) -> None:
        self._clock: Clock = SimClock(sim_start) if sim_start is not None else LiveClock()

    async def now(self) -> datetime:
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)

    async def advance_to(self, t: datetime) -> datetime:
        """Move simulated time to `t`, waking every wait due on the way."""
        if not isinstance(self._clock, SimClock):
            raise Rejected("not_simulated", "the live clock cannot be moved")
        await self._clock.advance_to_async(t)
        return self._clock.now()

    async def next_deadline(self) -> datetime | None:
        return self._clock.next_deadline() if isinstance(self._clock, SimClock) else None

    async def simulated(self) -> bool:
        return isinstance(self._clock, SimClock)


class ClockLink(Protocol):
    async def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class LocalClock:
    """A `ClockLink` over a clock in this process."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def now(self) -> datetime:
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


class RemoteClock:
    """A `ClockLink` over the `ClockActor`'s handle."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def now(self) -> datetime:
        result: datetime = await self._handle.now.remote()
        return result

    async def sleep(self, seconds: float) -> None:
        await self._handle.sleep.remote(seconds)


async def sleep_unless_stopped(clock: ClockLink, seconds: float, stopping: asyncio.Event) -> None:
    """Sleep `seconds` on `clock`, or less if `stopping` is set first. When the clock cannot
    be asked (its actor is gone), wait in real time instead of spinning."""
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({sleeping, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeping.cancel()
        stop.cancel()
    failure = sleeping.exception() if sleeping.done() and not sleeping.cancelled() else None
    if failure is not None:
        log.warning("clock sleep failed: %r", failure)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
