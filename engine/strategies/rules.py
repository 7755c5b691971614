"""`RuleStrategy`: the shared path from minute bars to alerts that every strategy here takes.

validate the parameters -> regular-hours minute bars -> the timeframe's complete bars
(`engine.strategies.sessions`) -> the strategy's `Signals` -> the position state machine
(`engine.strategies.positions`) -> alert dicts. A subclass names its parameters, its
timeframe and its signals; nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Final

from engine.calendar import MarketCalendar, xnys_calendar
from engine.strategies.base import (
    MINUTE_US,
    Alert,
    MinuteBars,
    Param,
    Problem,
    int_value,
    validate_params,
)
from engine.strategies.positions import AlertRows, Signals, alert_rows
from engine.strategies.sessions import (
    TimeframeBars,
    regular_hours,
    session_table,
    timeframe_bars,
)

SESSION_MINUTES: Final = 390  # a full XNYS session; a timeframe must divide it
TIMEFRAME: Final = "timeframe_minutes"


def timeframe_param(default: int) -> Param:
    """The `timeframe_minutes` parameter: 1..60 and a divisor of 390."""
    return Param(
        TIMEFRAME,
        "int",
        default,
        1,
        60,
        "bar length in minutes; divides 390 (1, 2, 3, 5, 6, 10, 13, 15, 26, 30, 39)",
    )


def timeframe_problems(values: Mapping[str, object]) -> list[Problem]:
    """A problem when `timeframe_minutes` does not divide a full session."""
    if SESSION_MINUTES % int_value(values, TIMEFRAME) == 0:
        return []
    return [{"field": TIMEFRAME, "problem": f"must divide {SESSION_MINUTES}"}]


class RuleStrategy(ABC):
    """A long-only strategy on regular-hours bars of one timeframe (see the module)."""

    name: str
    version: str
    params: tuple[Param, ...]

    def __init__(self, calendar: MarketCalendar | None = None) -> None:
        self._calendar = calendar or xnys_calendar()

    def cross_rules(self, values: Mapping[str, object]) -> list[Problem]:
        """Problems that involve more than one parameter (values already typed)."""
        return []

    @abstractmethod
    def timeframe_minutes(self, values: Mapping[str, object]) -> int:
        """The bar length, in minutes, for validated `values`."""

    @abstractmethod
    def signals(self, bars: TimeframeBars, values: Mapping[str, object]) -> Signals:
        """Entry candidates and exit reasons over `bars`, for validated `values`."""

    def validate(self, values: Mapping[str, object]) -> dict[str, object]:
        """`values` with defaults filled in; `Rejected("invalid_parameters")` otherwise."""
        return validate_params(self.params, values, self.cross_rules)

    def bars(self, minute_bars: MinuteBars, values: Mapping[str, object]) -> TimeframeBars:
        """The complete regular-hours bars this strategy reads, for validated `values`."""
        minutes = regular_hours(minute_bars, session_table(self._calendar))
        return timeframe_bars(minutes, self.timeframe_minutes(values), minute_bars.as_of_us)

    def rows(self, minute_bars: MinuteBars, params: Mapping[str, object]) -> AlertRows:
        """The alerts over the whole series, as arrays."""
        return self._rows(minute_bars, self.validate(params))

    def alerts(self, bars: MinuteBars, params: Mapping[str, object]) -> list[Alert]:
        """The TradingView alerts over the whole series, oldest first."""
        values = self.validate(params)
        return self._render(bars, values, self._rows(bars, values))

    def latest(self, bars: MinuteBars, params: Mapping[str, object]) -> list[Alert]:
        """The alerts of the bars that completed after the window's second-newest minute
        bar closed: normally those of the most recent complete bar (none while a bar is
        still forming). Call it once per new minute bar."""
        values = self.validate(params)
        previous = int(bars.ts_us[-2]) + MINUTE_US if len(bars) > 1 else _NEVER
        return self._render(bars, values, self._rows(bars, values).since(previous))

    def _rows(self, minute_bars: MinuteBars, values: Mapping[str, object]) -> AlertRows:
        frame = self.bars(minute_bars, values)
        return alert_rows(frame, self.signals(frame, values), minute_bars.as_of_us)

    def _render(
        self, bars: MinuteBars, values: Mapping[str, object], rows: AlertRows
    ) -> list[Alert]:
        return rows.render(bars.symbol, str(self.timeframe_minutes(values)), self.name)


_NEVER: Final = -(2**63)
