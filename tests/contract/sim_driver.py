"""Running an adapter call on a `SimClock` while its HTTP runs for real.

Back-off and throttler waits are clock deadlines: the driver moves the clock to each one
as soon as it exists. Between deadlines the call is doing real loopback I/O, so the
driver yields to the event loop for a few milliseconds at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from engine.clock import SimClock

T = TypeVar("T")

# A watchdog, not a timing assertion: a call stuck this long (real seconds) is a bug.
_STUCK_AFTER_S = 10.0


async def drive(clock: SimClock, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`, advancing `clock` through every wait it registers."""
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _STUCK_AFTER_S
    while not task.done():
        due = clock.next_deadline()
        if due is not None:
            await clock.advance_to_async(due)
        else:
            await asyncio.wait({task}, timeout=0.005)
        if loop.time() > give_up:
            task.cancel()
            raise AssertionError("the call did not finish: stuck on I/O or a lost wake-up")
    return task.result()
