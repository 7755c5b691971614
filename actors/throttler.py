"""ThrottlerActor: one `engine.throttle.Throttler` shared by every process that calls a vendor.

A plain class; `actors/system.py` wraps it with `ray.remote`. Callers in other processes
`await throttler.acquire.remote(limit_id, weight)`: the call returns when the weight is
granted, in arrival order (FIFO per window), or raises `RateLimited` when `max_queue`
requests already wait. `RemoteThrottler` gives `MarketDataService` the same thing through
a handle. The windows live in memory: a restarted throttler starts with empty windows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ray.exceptions import RayActorError

from actors.event_sink import EventSink
from actors.metrics import ThrottlerMetrics
from engine.adapters.alpaca_data import ALPACA_DATA_LIMITS
from engine.adapters.twelvedata import TWELVEDATA_FREE_LIMITS
from engine.clock import Clock, LiveClock
from engine.errors import Retryable
from engine.events import Event
from engine.throttle import RateLimit, Throttler

# Alpaca's free data plan and TwelveData's free plan (its minute window linked to its day).
VENDOR_LIMITS: tuple[RateLimit, ...] = (*ALPACA_DATA_LIMITS, *TWELVEDATA_FREE_LIMITS)


@dataclass(frozen=True, slots=True)
class Grant:
    """One granted request: `ticket` is its arrival number, `order` its grant number."""

    limit_id: str
    weight: int
    ticket: int
    order: int
    waited_s: float


class _WarnEvents:
    """The throttler's observer: its metrics, and a `rate_limit_warning` event when a grant
    leaves a window at or above 90 % of its limit (at most one a minute per window)."""

    def __init__(self, metrics: ThrottlerMetrics, sink: EventSink, clock: Clock) -> None:
        self._metrics = metrics
        self._sink = sink
        self._clock = clock
        self._last: dict[str, datetime] = {}

    def on_grant(self, limit_id: str, weight: int, waited_s: float) -> None:
        self._metrics.on_grant(limit_id, weight, waited_s)

    def on_window(self, limit_id: str, used: int, limit: int) -> None:
        self._metrics.on_window(limit_id, used, limit)

    def on_usage(self, limit_id: str, used: int, limit: int) -> None:
        self._metrics.on_usage(limit_id, used, limit)
        now = self._clock.now()
        last = self._last.get(limit_id)
        if last is None or (now - last).total_seconds() >= 60:
            self._last[limit_id] = now
            payload = {"limit_id": limit_id, "used": used, "limit": limit}
            self._sink.record(Event("rate_limit_warning", "marketdata", now, payload, limit_id))


class ThrottlerActor:
    def __init__(
        self,
        limits: Sequence[RateLimit] = VENDOR_LIMITS,
        *,
        max_queue: int = 100,
        warn_ratio: float = 0.9,
        clock: Clock | None = None,
        store: Any = None,
    ) -> None:
        self._clock = clock if clock is not None else LiveClock()
        self._limits = {limit.limit_id: limit for limit in limits}
        self._metrics = _WarnEvents(ThrottlerMetrics(), EventSink(store), self._clock)
        self._throttler = Throttler(
            limits,
            self._clock,
            max_queue=max_queue,
            warn_ratio=warn_ratio,
            observer=self._metrics,
        )
        self._tickets = itertools.count(1)
        self._grants = itertools.count(1)

    async def acquire(self, limit_id: str, weight: int = 1) -> Grant:
        """Wait for `weight` in `limit_id`'s windows (FIFO), then consume it.

        Raises `RateLimited` (code `rate_limited`, detail `{"limit_id", "waiting"}`,
        `retry_after`) when the queue is full, ValueError for an unknown id.
        """
        ticket = next(self._tickets)
        asked = self._clock.now()
        await self._throttler.acquire(limit_id, weight)
        order = next(self._grants)
        for window_id in (limit_id, *(link.limit_id for link in self._limits[limit_id].linked)):
            self._metrics.on_window(
                window_id, self._throttler.usage(window_id), self._limit(window_id)
            )
        waited = (self._clock.now() - asked).total_seconds()
        return Grant(limit_id, weight, ticket, order, waited)

    async def pause(self, limit_id: str, until: datetime) -> None:
        """Grant nothing charging `limit_id` before `until` (a vendor said "come back then")."""
        self._throttler.pause(limit_id, until)

    async def usage(self, limit_id: str) -> dict[str, Any]:
        """`{"limit_id", "used", "limit", "waiting", "paused_until"}` for one window now."""
        return {
            "limit_id": limit_id,
            "used": self._throttler.usage(limit_id),
            "limit": self._limit(limit_id),
            "waiting": self._throttler.waiting,
            "paused_until": self._throttler.paused_until(limit_id),
        }

    async def waiting(self) -> int:
        """How many requests wait, across every window."""
        return self._throttler.waiting

    def _limit(self, limit_id: str) -> int:
        return self._limits[limit_id].limit


class RemoteThrottler:
    """`engine.market_service.RateGate` over a `ThrottlerActor` handle.

    A throttler that cannot be reached (its actor died or restarts) is a transient
    failure, `Retryable`, so the service falls back or reports every provider down.
    """

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def acquire(self, limit_id: str, weight: int = 1) -> None:
        try:
            await self._handle.acquire.remote(limit_id, weight)
        except RayActorError as exc:
            raise Retryable(f"throttler unavailable: {type(exc).__name__}") from None

    def pause(self, limit_id: str, until: datetime) -> None:
        # Fire and forget: a pause that gets lost only costs the vendor's next 429.
        self._handle.pause.remote(limit_id, until)
