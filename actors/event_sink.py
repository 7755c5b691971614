"""Where actors without state of their own send events: the Store's outbox, not awaited.

A breaker changing state or a throttler window nearing its limit is an event in the
Parquet log like any other (stream `marketdata`). Without a Store handle (unit tests,
benchmarks) events are only logged.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.events import Event

log = logging.getLogger(__name__)


class EventSink:
    def __init__(self, store: Any = None) -> None:
        self._store = store

    def record(self, event: Event) -> None:
        log.warning("%s %s", event.kind, dict(event.payload))
        if self._store is not None:
            self._store.record_events.remote((event,))
