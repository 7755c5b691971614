"""Shared pieces for storage tests: rows that satisfy the real schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.events import Event
from storage.writes import Insert, InsertSignal

T0 = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)


def signal_request(
    symbol: str = "SPY", bar_minute: int = 0, received_at: datetime = T0, direction: str = "long"
) -> InsertSignal:
    bar_time = T0 + timedelta(minutes=bar_minute)
    row: dict[str, Any] = {
        "symbol": symbol,
        "direction": direction,
        "timeframe": "1m",
        "bar_time": bar_time,
        "action": "entry",
    }
    key = f"{symbol}|{direction}|1m|{bar_time.isoformat()}"
    event = Event("signal_received", "signals", received_at, {"symbol": symbol})
    return InsertSignal(row, key, received_at, events=(event,))


def audit_request(actor: str | None = "tester", n: int = 0) -> Insert:
    row = {"logged_at": T0, "actor": actor, "action": "test", "target": f"t{n}"}
    event = Event("audited", "audit", T0, {"n": n})
    return Insert("audit_log", (row,), id_column="audit_id", events=(event,))
