"""The StrategyRouter's rule: which variant a signal belongs to (docs/experiments.md).

Variant B when the master flag is on and `int(sha256(symbol|timeframe|session_id)) % 100
< split_pct`; else A. `session_id` is the exchange trading date of the signal (unit
`session`: a symbol and timeframe stay in one variant for the day) or the signal id (unit
`signal`). The bucket depends on nothing else, so an assignment can be recomputed from
the log, and raising the split from 5 to 10 keeps every B unit in B.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Literal

from engine.errors import Fatal

Variant = Literal["A", "B"]
Unit = Literal["session", "signal"]


@dataclass(frozen=True, slots=True)
class Assignment:
    """One experiment record: `unit_key` is the session date or the signal id, as text."""

    experiment_id: str
    signal_id: int
    variant: Variant
    bucket: int
    unit: Unit
    unit_key: str
    split_pct: float


def bucket_of(symbol: str, timeframe: str, unit_key: str) -> int:
    """0–99: the SHA-256 of `symbol|timeframe|unit_key` as an integer, modulo 100."""
    digest = hashlib.sha256(f"{symbol.upper()}|{timeframe}|{unit_key}".encode()).digest()
    return int.from_bytes(digest, "big") % 100


def unit_key(unit: Unit, signal_id: int, session: date) -> str:
    return session.isoformat() if unit == "session" else str(signal_id)


def assign(
    *,
    experiment_id: str,
    signal_id: int,
    symbol: str,
    timeframe: str,
    session: date,
    split_pct: float,
    master_on: bool,
    unit: Unit = "session",
) -> Assignment:
    """The variant of one signal (rules in the module docstring)."""
    if not 0 <= split_pct <= 100:
        raise Fatal(f"split_pct is a percentage in [0, 100], got {split_pct!r}")
    if unit not in ("session", "signal"):
        raise Fatal(f"unit must be session or signal, got {unit!r}")
    key = unit_key(unit, signal_id, session)
    bucket = bucket_of(symbol, timeframe, key)
    variant: Variant = "B" if master_on and bucket < split_pct else "A"
    return Assignment(experiment_id, signal_id, variant, bucket, unit, key, split_pct)
