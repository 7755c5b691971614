"""Small pieces the specialist agents share: confidence arithmetic, flags, config records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from engine.agents.base import Bias


def clamp(x: float, lo: float, hi: float) -> float:
    """x limited to [lo, hi]; NaN counts as lo (a missing input adds nothing)."""
    if math.isnan(x):
        return lo
    return min(hi, max(lo, x))


def sign(bias: Bias) -> float:
    """+1 long, −1 short, 0 neutral."""
    return {"long": 1.0, "short": -1.0, "neutral": 0.0}[bias]


def direction_of(x: float) -> Bias:
    """long for x > 0, short for x < 0, neutral for 0 or NaN."""
    if x > 0:
        return "long"
    if x < 0:
        return "short"
    return "neutral"


def flag_on(flags: Mapping[str, bool], name: str) -> bool:
    """A flag is on only when present and true (the default of every flag is off)."""
    return bool(flags.get(name, False))


def config_record(config: Any) -> dict[str, float | int | str]:
    """A frozen config dataclass as the flat mapping `AgentDecision.config` holds (tuples
    become comma-separated text)."""
    record: dict[str, float | int | str] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        record[f.name] = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return record
