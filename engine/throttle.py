"""Client-side rate limiting: sliding windows per endpoint, linked limits, FIFO waiting.

A `RateLimit` is one vendor quota: at most `limit` units of weight in any window of
`interval_s` seconds. A request names one limit id and a weight. It consumes that weight
in its own window and `weight × link.weight` in every linked window: TwelveData's free
plan charges each call to an 8-credit minute *and* an 800-credit day.

Modelled on Hummingbot's `AsyncThrottler` (`RateLimit`, `LinkedLimitWeightPair`), with
three differences:

- the window book (`RateWindows`) is a pure object: every method takes `now`;
- waiting is event-driven on the injected `Clock` (a `SimClock` in tests), sleeping
  exactly until the earliest grant expires, never polling;
- waiters are served first come, first served: a request never overtakes an earlier
  one that is still waiting on any window it shares.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from engine.clock import Clock, ensure_utc
from engine.errors import RateLimited


@dataclass(frozen=True, slots=True)
class LinkedLimit:
    """Another window a request also pays into, `weight` units per unit of its own."""

    limit_id: str
    weight: int = 1

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"linked limit {self.limit_id!r}: weight must be >= 1")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` units of weight granted in any `interval_s`-second window."""

    limit_id: str
    limit: int
    interval_s: float
    linked: tuple[LinkedLimit, ...] = ()

    def __post_init__(self) -> None:
        if not self.limit_id:
            raise ValueError("rate limit: empty limit_id")
        if self.limit < 1:
            raise ValueError(f"rate limit {self.limit_id!r}: limit must be >= 1")
        if self.interval_s <= 0:
            raise ValueError(f"rate limit {self.limit_id!r}: interval_s must be > 0")

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.interval_s)


class RateWindows:
    """The grant log of every window: pure bookkeeping, time passed in by the caller.

    A grant at `t` occupies its window during `[t, t + interval)`. A request fits at `now`
    when, in each window it charges, the weight granted in `(now - interval, now]` plus its
    charge is at most the limit, and none of those windows is paused past `now`.
    """

    def __init__(self, limits: Iterable[RateLimit]) -> None:
        self._limits: dict[str, RateLimit] = {}
        for rate_limit in limits:
            if rate_limit.limit_id in self._limits:
                raise ValueError(f"rate limit {rate_limit.limit_id!r} defined twice")
            self._limits[rate_limit.limit_id] = rate_limit
        for rate_limit in self._limits.values():
            for link in rate_limit.linked:
                if link.limit_id not in self._limits or link.limit_id == rate_limit.limit_id:
                    raise ValueError(
                        f"rate limit {rate_limit.limit_id!r} links to unknown or own id "
                        f"{link.limit_id!r}"
                    )
        self._grants: dict[str, deque[tuple[datetime, int]]] = {k: deque() for k in self._limits}
        self._used: dict[str, int] = dict.fromkeys(self._limits, 0)
        self._paused: dict[str, datetime] = {}

    def rate_limit(self, limit_id: str) -> RateLimit:
        try:
            return self._limits[limit_id]
        except KeyError:
            raise ValueError(f"unknown rate limit {limit_id!r}") from None

    def charges(self, limit_id: str, weight: int) -> tuple[tuple[str, int], ...]:
        """The `(window id, weight)` pairs one request consumes: its own window, then links.

        Raises ValueError for an unknown id, a weight below 1, or a charge larger than a
        window's limit (such a request could never be granted).
        """
        own = self.rate_limit(limit_id)
        if weight < 1:
            raise ValueError(f"weight must be >= 1, got {weight}")
        charges = ((limit_id, weight), *((k.limit_id, weight * k.weight) for k in own.linked))
        for window_id, charge in charges:
            if charge > self._limits[window_id].limit:
                raise ValueError(
                    f"weight {charge} can never fit {window_id!r} "
                    f"(limit {self._limits[window_id].limit})"
                )
        return charges

    def used(self, limit_id: str, now: datetime) -> int:
        """Weight granted in `limit_id`'s window `(now - interval, now]`."""
        self.rate_limit(limit_id)
        self._expire(limit_id, now)
        return self._used[limit_id]

    def pause(self, limit_id: str, until: datetime) -> None:
        """Grant nothing that charges `limit_id` before `until` (a pause only ever extends)."""
        self.rate_limit(limit_id)
        until = ensure_utc(until)
        current = self._paused.get(limit_id)
        if current is None or until > current:
            self._paused[limit_id] = until

    def paused_until(self, limit_id: str, now: datetime) -> datetime | None:
        until = self._paused.get(limit_id)
        return until if until is not None and until > now else None

    def next_free(self, limit_id: str, weight: int, now: datetime) -> datetime:
        """The earliest time at or after `now` when this request fits, if nothing else is granted.

        Each window's condition only improves as time passes, so the answer is the latest of
        the windows' own earliest times and of their pauses.
        """
        earliest = now
        for window_id, charge in self.charges(limit_id, weight):
            earliest = max(earliest, self._window_free_at(window_id, charge, now))
            paused = self.paused_until(window_id, now)
            if paused is not None:
                earliest = max(earliest, paused)
        return earliest

    def try_grant(self, limit_id: str, weight: int, now: datetime) -> datetime | None:
        """Grant the request at `now` and return None, or return when it would next fit."""
        free_at = self.next_free(limit_id, weight, now)
        if free_at > now:
            return free_at
        for window_id, charge in self.charges(limit_id, weight):
            self._grants[window_id].append((now, charge))
            self._used[window_id] += charge
        return None

    def _window_free_at(self, window_id: str, charge: int, now: datetime) -> datetime:
        self._expire(window_id, now)
        rate_limit = self._limits[window_id]
        excess = self._used[window_id] + charge - rate_limit.limit
        if excess <= 0:
            return now
        freed = 0
        for granted_at, weight in self._grants[window_id]:
            freed += weight
            if freed >= excess:
                return granted_at + rate_limit.interval
        raise AssertionError("a charge within the limit always fits once the window empties")

    def _expire(self, window_id: str, now: datetime) -> None:
        grants = self._grants[window_id]
        interval = self._limits[window_id].interval
        while grants and grants[0][0] + interval <= now:
            _, weight = grants.popleft()
            self._used[window_id] -= weight


class ThrottleObserver(Protocol):
    """Receives throttler events (metrics, warnings). Called synchronously; must not block."""

    def on_grant(self, limit_id: str, weight: int, waited_s: float) -> None:
        """A request for `limit_id` was granted after waiting `waited_s` clock seconds."""
        ...

    def on_usage(self, limit_id: str, used: int, limit: int) -> None:
        """After a grant, window `limit_id` holds `used` of `limit`, at or above the warn ratio."""
        ...


@dataclass(eq=False)
class _Waiter:
    limit_id: str
    weight: int
    windows: frozenset[str]
    requested_at: datetime
    future: asyncio.Future[None] = field(repr=False)


class Throttler:
    """Waits for capacity across linked windows; FIFO per window; time from a `Clock`.

    `acquire` returns at once when no earlier request waits on a window it charges and every
    such window has room; otherwise it queues. A timer sleeps on the clock until the earliest
    time a queued request at the head of its windows fits, then grants, in arrival order,
    every queued request that fits. A full queue raises `RateLimited`.
    """

    def __init__(
        self,
        limits: Iterable[RateLimit],
        clock: Clock,
        *,
        max_queue: int = 100,
        warn_ratio: float = 0.9,
        observer: ThrottleObserver | None = None,
    ) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        if not 0 < warn_ratio <= 1:
            raise ValueError("warn_ratio must be in (0, 1]")
        self._windows = RateWindows(limits)
        self._clock = clock
        self._max_queue = max_queue
        self._warn_ratio = warn_ratio
        self._observer = observer
        self._queue: deque[_Waiter] = deque()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None

    @property
    def waiting(self) -> int:
        """How many requests are queued."""
        return len(self._queue)

    def usage(self, limit_id: str) -> int:
        """Weight granted in `limit_id`'s current window."""
        return self._windows.used(limit_id, self._clock.now())

    def paused_until(self, limit_id: str) -> datetime | None:
        return self._windows.paused_until(limit_id, self._clock.now())

    def pause(self, limit_id: str, until: datetime) -> None:
        """A vendor said "rate limited until `until`": grant nothing charging this window before."""
        self._windows.pause(limit_id, until)
        if self._queue:
            self._pump()

    async def acquire(self, limit_id: str, weight: int = 1) -> None:
        """Wait until `weight` fits every window `limit_id` charges, then consume it.

        Raises ValueError for an unknown id or an impossible weight, and `RateLimited`
        (code `rate_limited`) when `max_queue` requests already wait.
        """
        windows = frozenset(w for w, _ in self._windows.charges(limit_id, weight))
        now = self._clock.now()
        if not self._queued_on(windows):
            free_at = self._windows.try_grant(limit_id, weight, now)
            if free_at is None:
                self._granted(limit_id, weight, now, now)
                return
        if len(self._queue) >= self._max_queue:
            hint = self._windows.next_free(limit_id, weight, now) - now
            raise RateLimited(
                "rate_limited",
                {"limit_id": limit_id, "waiting": len(self._queue)},
                retry_after=hint.total_seconds(),
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(limit_id, weight, windows, now, future)
        self._queue.append(waiter)
        self._pump()
        try:
            await future
        finally:
            if waiter in self._queue:  # cancelled while waiting: let the next ones through
                self._queue.remove(waiter)
                self._pump()

    def _queued_on(self, windows: frozenset[str]) -> bool:
        return any(waiter.windows & windows for waiter in self._queue)

    def _pump(self) -> None:
        """Grant queued requests that fit now, in order; arm the timer for the next one."""
        now = self._clock.now()
        blocked: set[str] = set()
        wake_at: datetime | None = None
        for waiter in list(self._queue):
            if waiter.future.done():
                self._queue.remove(waiter)
                continue
            if waiter.windows & blocked:
                blocked |= waiter.windows
                continue
            free_at = self._windows.try_grant(waiter.limit_id, waiter.weight, now)
            if free_at is None:
                self._queue.remove(waiter)
                self._granted(waiter.limit_id, waiter.weight, waiter.requested_at, now)
                waiter.future.set_result(None)
                continue
            blocked |= waiter.windows
            wake_at = free_at if wake_at is None else min(wake_at, free_at)
        self._arm_timer(wake_at, now)

    def _arm_timer(self, wake_at: datetime | None, now: datetime) -> None:
        if wake_at == self._timer_at and (wake_at is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, wake_at
        if wake_at is not None:
            delay = (wake_at - now).total_seconds()
            self._timer = asyncio.get_running_loop().create_task(self._wake_after(delay))

    async def _wake_after(self, delay: float) -> None:
        await self._clock.sleep(delay)
        self._timer, self._timer_at = None, None
        self._pump()

    def _granted(self, limit_id: str, weight: int, requested_at: datetime, now: datetime) -> None:
        if self._observer is None:
            return
        self._observer.on_grant(limit_id, weight, (now - requested_at).total_seconds())
        for window_id, _ in self._windows.charges(limit_id, weight):
            used = self._windows.used(window_id, now)
            limit = self._windows.rate_limit(window_id).limit
            if used >= self._warn_ratio * limit:
                self._observer.on_usage(window_id, used, limit)
