"""Time for the engine: a `Clock` port with a wall clock and a discrete-event clock.

Domain code never reads the wall clock. It asks the `Clock` it was given, or takes the
event time carried in the message it is handling. Live runs wire `LiveClock`; replays,
backtests and tests wire `SimClock`, where every wait registers a deadline and the driver
moves time forward to the earlier of its next data event and the earliest deadline.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

# How many times the sim driver yields to the event loop after waking sleepers, so that a
# woken coroutine can run up to its next wait (and register its next deadline) before
# time moves again. Each hop through `await` of an already-finished awaitable costs one.
_SETTLE_YIELDS = 8


class ClockError(ValueError):
    """A clock was asked to do something impossible (move backwards, naive time)."""


def ensure_utc(t: datetime) -> datetime:
    """Return `t` as an aware UTC datetime; naive datetimes are refused."""
    if t.tzinfo is None:
        raise ClockError(f"naive datetime {t.isoformat()} has no time zone; use UTC")
    return t.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """The only source of 'now' for domain code."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time (never a real wait on a `SimClock`)."""
        ...


class LiveClock:
    """The wall clock, in UTC. Waits are real `asyncio.sleep`s."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(order=True)
class _Deadline:
    when: datetime
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class TimerHandle:
    """Returned by `SimClock.call_at`; `cancel()` removes the deadline."""

    def __init__(self, deadline: _Deadline) -> None:
        self._deadline = deadline

    @property
    def when(self) -> datetime:
        return self._deadline.when

    def cancel(self) -> None:
        self._deadline.cancelled = True


class SimClock:
    """A discrete-event clock: time moves only when the driver advances it.

    Every wait (`sleep`, `call_at`) registers a deadline. `advance_to(t)` fires, in time
    order, every deadline at or before `t`, setting `now()` to each deadline as it fires,
    then leaves the clock at `t`. Time never moves backwards: that raises `ClockError`.
    """

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._heap: list[_Deadline] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def call_at(self, when: datetime, action: Callable[[], None]) -> TimerHandle:
        """Run `action` when the clock reaches `when` (at once if that is not later than now)."""
        deadline = _Deadline(max(ensure_utc(when), self._now), next(self._seq), action)
        heapq.heappush(self._heap, deadline)
        return TimerHandle(deadline)

    def call_later(self, seconds: float, action: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._now + timedelta(seconds=max(0.0, seconds)), action)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self.call_later(seconds, wake)
        try:
            await future
        finally:
            handle.cancel()

    def next_deadline(self) -> datetime | None:
        """The earliest pending deadline, or None when nothing waits on this clock."""
        self._drop_cancelled()
        return self._heap[0].when if self._heap else None

    def pending(self) -> int:
        self._drop_cancelled()
        return sum(1 for d in self._heap if not d.cancelled)

    def advance_to(self, t: datetime) -> int:
        """Fire every deadline at or before `t` in order; return how many fired."""
        target = ensure_utc(t)
        if target < self._now:
            raise ClockError(
                f"time cannot move backwards: now {self._now.isoformat()}, "
                f"asked for {target.isoformat()}"
            )
        fired = 0
        while (deadline := self._pop_due(target)) is not None:
            self._now = deadline.when
            deadline.action()
            fired += 1
        self._now = target
        return fired

    def next_time(self, next_event: datetime | None) -> datetime | None:
        """The time a driver should move to: the earlier of its next event and a deadline."""
        deadline = self.next_deadline()
        candidates = [c for c in (next_event, deadline) if c is not None]
        return min(candidates) if candidates else None

    async def advance_to_async(self, t: datetime) -> int:
        """`advance_to` for asyncio drivers: woken sleepers run before time moves on.

        Deadlines are fired one instant at a time; after each instant the loop runs the
        woken coroutines, so a wait they register at or before `t` fires in this call too.
        """
        target = ensure_utc(t)
        fired = 0
        while True:
            due = self.next_deadline()
            if due is None or due > target:
                break
            fired += self.advance_to(due)
            for _ in range(_SETTLE_YIELDS):
                await asyncio.sleep(0)
        fired += self.advance_to(target)
        return fired

    async def run_until_idle(self, limit: datetime | None = None) -> None:
        """Advance through every pending deadline (up to `limit`) until none is left."""
        while (due := self.next_deadline()) is not None:
            if limit is not None and due > limit:
                break
            await self.advance_to_async(due)

    def _pop_due(self, target: datetime) -> _Deadline | None:
        self._drop_cancelled()
        if self._heap and self._heap[0].when <= target:
            return heapq.heappop(self._heap)
        return None

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
