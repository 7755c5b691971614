"""Events: immutable facts with their event time, recorded in the outbox and landed as Parquet.

An event is written in the same Store transaction as the state change it records. The
Store assigns its sequence number (gap-free, one total order) and `recorded_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.clock import ensure_utc


@dataclass(frozen=True, slots=True)
class Event:
    """A past-tense fact: `kind` names it (`signal_received`), `stream` groups it (`signals`).

    `entity_id` names the row it is about; when None and the write that carries the event
    assigns exactly one id, the Store fills it in with that id.
    """

    kind: str
    stream: str
    event_time: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    entity_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_time", ensure_utc(self.event_time))
        if not self.kind or not self.stream:
            raise ValueError("an event needs a kind and a stream")
