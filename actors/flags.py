"""FeatureFlagsActor: the current feature flags and experiment split, for every reader.

A plain class; `actors/system.py` wraps it with `ray.remote`. Readers (the strategy router,
the agents' runner) call `current()` and get a frozen `FlagsSnapshot`. The actor re-reads
the `feature_flags` and `experiment_settings` tables from the Store when its snapshot is
`max_age_s` (5 s) or more old on the run's clock, so an admin's change is seen within 5 s
of clock time; `refresh()` re-reads at once. When a re-read fails the error reaches the
reader: a snapshot older than `max_age_s` is never answered.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from actors.clock import ClockLink
from engine.flags import ExperimentSettings, FeatureFlags, FlagsSnapshot

MAX_AGE_S = 5.0


class FeatureFlagsActor:
    def __init__(self, store: Any, clock: ClockLink, max_age_s: float = MAX_AGE_S) -> None:
        self._store = store
        self._clock = clock
        self._max_age = timedelta(seconds=max_age_s)
        self._snapshot: FlagsSnapshot | None = None
        self._reads_begun = 0
        self._snapshot_read = 0  # which read (by `_reads_begun`) made `_snapshot`
        self._lock: asyncio.Lock | None = None  # made on first use, in the actor's loop

    async def current(self) -> FlagsSnapshot:
        """The flags and split as read at most `max_age_s` of clock time ago."""
        now = await self._clock.now()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.read_at <= now < snapshot.read_at + self._max_age:
            return snapshot
        return await self.refresh()

    async def refresh(self) -> FlagsSnapshot:
        """Read both tables now and keep the result. Callers that wait while one read runs
        share the next read, which begins after they asked (so it sees what they saw)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        asked_after = self._reads_begun
        async with self._lock:
            if self._snapshot is not None and self._snapshot_read > asked_after:
                return self._snapshot
            self._reads_begun += 1
            number = self._reads_begun
            self._snapshot = await self._read()
            self._snapshot_read = number
            return self._snapshot

    async def _read(self) -> FlagsSnapshot:
        read_at = await self._clock.now()
        flag_rows, setting_rows = await asyncio.gather(
            self._store.settings.remote("feature_flags"),
            self._store.settings.remote("experiment_settings"),
        )
        flags = FeatureFlags.from_rows(
            {r["name"]: (r["enabled"], r["whitelist"]) for r in flag_rows}
        )
        experiment = ExperimentSettings.from_rows({r["name"]: r["value"] for r in setting_rows})
        return FlagsSnapshot(flags, experiment, read_at)
