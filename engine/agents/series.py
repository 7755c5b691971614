"""Bars as float arrays, and the small readings agents share (last value, finite features)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.indicators import FloatArray
from engine.marketdata import Bar


@dataclass(frozen=True, slots=True, eq=False)
class Ohlcv:
    """Columns of a bar sequence, oldest first, as float64 arrays."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.close.size)


def ohlcv(bars: Sequence[Bar]) -> Ohlcv:
    """The columns of `bars`."""
    return Ohlcv(
        open=np.array([b.open for b in bars], dtype=np.float64),
        high=np.array([b.high for b in bars], dtype=np.float64),
        low=np.array([b.low for b in bars], dtype=np.float64),
        close=np.array([b.close for b in bars], dtype=np.float64),
        volume=np.array([b.volume for b in bars], dtype=np.float64),
    )


def last(values: FloatArray) -> float:
    """The newest value of an indicator series (NaN when empty or still warming up)."""
    return float(values[-1]) if values.size else math.nan


def finite(features: Mapping[str, float]) -> dict[str, float]:
    """The features that have a value: NaN and infinities (warm-up) are left out, so a
    decision's features are plain JSON numbers."""
    return {k: float(v) for k, v in features.items() if math.isfinite(v)}
