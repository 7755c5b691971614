"""`StrategyRegistry`: the strategies by name, each with its lifecycle.

    registered (disabled) --enable--> enabled --start(params)--> running
    running --stop--> enabled --disable--> disabled

`start` validates the parameters (`Rejected("invalid_parameters")`) and keeps them while
the strategy runs. Any other move raises `Conflict("illegal_transition")`; an unknown
name raises `NotFound("unknown_strategy")`; registering a name twice raises
`Conflict("strategy_exists")`. A registry is a plain object: build one per runtime
(`default_registry`); there is no module-level instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from engine.calendar import MarketCalendar
from engine.errors import Conflict, NotFound
from engine.strategies.base import Strategy
from engine.strategies.ema_cross import EmaCross
from engine.strategies.ttm_squeeze import TtmSqueeze
from engine.strategies.vwap import VwapMeanReversion, VwapMicroMeanReversion


class StrategyState(StrEnum):
    DISABLED = "disabled"
    ENABLED = "enabled"
    RUNNING = "running"


class Transition(StrEnum):
    ENABLE = "enable"
    START = "start"
    STOP = "stop"
    DISABLE = "disable"


# (from, transition) -> to; every pair not listed is illegal.
TRANSITIONS: Final[Mapping[tuple[StrategyState, Transition], StrategyState]] = MappingProxyType(
    {
        (StrategyState.DISABLED, Transition.ENABLE): StrategyState.ENABLED,
        (StrategyState.ENABLED, Transition.START): StrategyState.RUNNING,
        (StrategyState.RUNNING, Transition.STOP): StrategyState.ENABLED,
        (StrategyState.ENABLED, Transition.DISABLE): StrategyState.DISABLED,
    }
)


@dataclass(frozen=True, slots=True)
class StrategyStatus:
    """A strategy's state; `params` are the validated parameters while it runs."""

    name: str
    version: str
    state: StrategyState
    params: Mapping[str, object] | None = field(default=None)


@dataclass(slots=True)
class _Entry:
    strategy: Strategy
    state: StrategyState = StrategyState.DISABLED
    params: Mapping[str, object] | None = None


class StrategyRegistry:
    """Strategies by name, each registered disabled (module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def register(self, strategy: Strategy) -> None:
        """Add `strategy`, disabled; `Conflict("strategy_exists")` for a taken name."""
        if strategy.name in self._entries:
            raise Conflict("strategy_exists", {"strategy": strategy.name})
        self._entries[strategy.name] = _Entry(strategy)

    def get(self, name: str) -> Strategy:
        """The strategy called `name`; `NotFound("unknown_strategy")` if none is."""
        return self._entry(name).strategy

    def names(self) -> tuple[str, ...]:
        """Every registered name, sorted."""
        return tuple(sorted(self._entries))

    def status(self, name: str) -> StrategyStatus:
        entry = self._entry(name)
        return StrategyStatus(name, entry.strategy.version, entry.state, entry.params)

    def running(self) -> tuple[StrategyStatus, ...]:
        """The running strategies with their parameters, by name."""
        return tuple(
            self.status(n) for n in self.names() if self._entries[n].state is StrategyState.RUNNING
        )

    def enable(self, name: str) -> StrategyStatus:
        return self._move(name, Transition.ENABLE)

    def start(self, name: str, params: Mapping[str, object]) -> StrategyStatus:
        """Run `name` with `params` validated (defaults filled in); it must be enabled."""
        entry = self._entry(name)
        self._check(name, entry, Transition.START)
        values = MappingProxyType(entry.strategy.validate(params))
        status = self._move(name, Transition.START)
        entry.params = values
        return StrategyStatus(status.name, status.version, status.state, values)

    def stop(self, name: str) -> StrategyStatus:
        status = self._move(name, Transition.STOP)
        self._entries[name].params = None
        return StrategyStatus(status.name, status.version, status.state)

    def disable(self, name: str) -> StrategyStatus:
        return self._move(name, Transition.DISABLE)

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound("unknown_strategy", {"strategy": name, "known": list(self.names())})
        return entry

    def _check(self, name: str, entry: _Entry, move: Transition) -> StrategyState:
        target = TRANSITIONS.get((entry.state, move))
        if target is None:
            detail = {"strategy": name, "state": entry.state.value, "transition": move.value}
            raise Conflict("illegal_transition", detail)
        return target

    def _move(self, name: str, move: Transition) -> StrategyStatus:
        entry = self._entry(name)
        entry.state = self._check(name, entry, move)
        return self.status(name)


def default_strategies(calendar: MarketCalendar | None = None) -> tuple[Strategy, ...]:
    """The four strategies of docs/strategies.md."""
    return (
        EmaCross(calendar),
        VwapMeanReversion(calendar),
        VwapMicroMeanReversion(calendar),
        TtmSqueeze(calendar),
    )


def default_registry(calendar: MarketCalendar | None = None) -> StrategyRegistry:
    """A new registry holding the four strategies, all disabled."""
    registry = StrategyRegistry()
    for strategy in default_strategies(calendar):
        registry.register(strategy)
    return registry
