"""Ticker: turns the run's clock into `tick(now)` messages for the periodic workers.

A plain class; `actors/system.py` wraps it with `ray.remote`. `run()` loops: read `now`
from the clock, send `tick(now)` to every target and wait for all of them, then sleep
`interval_s` on the clock. On the live clock that is a real wait; on a simulated clock it
is a deadline that the replay driver advances through, so ticks follow simulated time.
A target that fails is logged and counted; it never stops the loop or the other targets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from actors.clock import ClockLink, sleep_unless_stopped
from actors.metrics import TickerMetrics

log = logging.getLogger(__name__)


class Ticker:
    """`targets` are handles with a `tick(now)` method; `names` label them in metrics."""

    def __init__(
        self,
        clock: ClockLink,
        targets: Sequence[Any],
        interval_s: float,
        names: Sequence[str] = (),
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self._clock = clock
        self._targets = list(targets)
        self._names = [*names, *(f"target{i}" for i in range(len(names), len(targets)))]
        self._interval = interval_s
        self._stopping = asyncio.Event()
        self._running = False
        self._metrics = TickerMetrics()

    async def run(self) -> int:
        """Tick until `stop()`; returns how many ticks were sent. A second call returns 0."""
        if self._running:
            return 0
        self._running = True
        ticks = 0
        try:
            while not self._stopping.is_set():
                try:
                    await self.tick_once()
                    ticks += 1
                except Exception as exc:  # the clock actor restarting: try again next time
                    log.warning("tick failed: %r", exc)
                await sleep_unless_stopped(self._clock, self._interval, self._stopping)
        finally:
            self._running = False
        return ticks

    async def tick_once(self) -> datetime:
        """Send one `tick(now)` to every target and wait for them all; returns `now`."""
        now = await self._clock.now()
        await asyncio.gather(
            *(self._tick(name, t, now) for name, t in zip(self._names, self._targets, strict=True))
        )
        return now

    async def stop(self) -> None:
        """End `run()` at once (an unfinished clock wait is abandoned)."""
        self._stopping.set()

    async def _tick(self, name: str, target: Any, now: datetime) -> None:
        started = time.perf_counter()
        failed = False
        try:
            await target.tick.remote(now)
        except Exception as exc:
            failed = True
            log.warning("%s failed its tick at %s: %r", name, now.isoformat(), exc)
        finally:
            self._metrics.on_tick(name, time.perf_counter() - started, failed)
