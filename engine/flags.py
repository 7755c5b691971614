"""Feature flags and the run-time experiment settings of Engine 2 (variant B).

A flag is a switch an admin turns at run time (`feature_flags` table, `/feature-flags`),
optionally limited to a whitelist of symbols; every flag is off until an admin turns it
on. The known flags are the constants below and nothing else: a row or a question about
another name is an error, never a silent "off".

The core agents (Technical, Context, Risk) have no flag, so no flag value can turn them
off while variant B runs (`agent_enabled`); in particular the Risk agent's veto always
applies. `split_pct` (the share of signals sent to B) is the one run-time experiment
setting; the assignment unit (session or signal) is a start-up setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from engine.errors import Fatal, NotFound

ENABLE_VARIANT_B: Final = "enable_variant_b"  # master: off means every signal goes to A
ENABLE_ORB: Final = "enable_orb"
ENABLE_STRAT: Final = "enable_strat"
ENABLE_TTM: Final = "enable_ttm"
ENABLE_SATYLAND: Final = "enable_satyland"
ENABLE_FUTURES: Final = "enable_futures"
KNOWN_FLAGS: Final = (
    ENABLE_VARIANT_B,
    ENABLE_ORB,
    ENABLE_STRAT,
    ENABLE_TTM,
    ENABLE_SATYLAND,
    ENABLE_FUTURES,
)

AGENT_FLAGS: Final[Mapping[str, str]] = {
    "orb": ENABLE_ORB,
    "strat": ENABLE_STRAT,
    "ttm": ENABLE_TTM,
    "satyland": ENABLE_SATYLAND,
}
CORE_AGENTS: Final = ("technical", "context", "risk")  # no flag: active whenever B runs

SPLIT_PCT: Final = "split_pct"
KNOWN_SETTINGS: Final = (SPLIT_PCT,)

_SYMBOL = re.compile(r"[A-Z0-9./:_-]{1,21}")  # as an alert's symbol (engine.alerts)


def _unknown_flag(name: str) -> NotFound:
    return NotFound("unknown_flag", f"no feature flag {name!r}; known: {list(KNOWN_FLAGS)}")


def whitelist_of(symbols: Sequence[str] | None) -> frozenset[str]:
    """A whitelist as the engine holds it: upper-cased symbols; None or empty: all symbols.

    Raises `ValueError` for anything that is not a list of symbols (1-21 of
    `A-Z 0-9 . - / : _`, as an alert's symbol).
    """
    if symbols is None:
        return frozenset()
    if isinstance(symbols, str) or not isinstance(symbols, Sequence):
        raise ValueError("a whitelist is a list of symbols")
    out = set()
    for symbol in symbols:
        if not isinstance(symbol, str) or _SYMBOL.fullmatch(symbol.strip().upper()) is None:
            raise ValueError(f"whitelist entry {symbol!r} is not a symbol")
        out.add(symbol.strip().upper())
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag: on or off, for every symbol (empty whitelist) or only the listed ones."""

    name: str
    enabled: bool = False
    whitelist: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.name not in KNOWN_FLAGS:
            raise Fatal(f"unknown feature flag {self.name!r}", hint=f"known: {list(KNOWN_FLAGS)}")
        if not isinstance(self.enabled, bool):
            raise TypeError(f"{self.name}: enabled must be true or false")

    def on_for(self, symbol: str | None) -> bool:
        """On for `symbol`; with no symbol, on for every symbol (no whitelist)."""
        if not self.enabled:
            return False
        if not self.whitelist:
            return True
        return symbol is not None and symbol.strip().upper() in self.whitelist


@dataclass(frozen=True, slots=True)
class FeatureFlags:
    """Every known flag's state; built from the `feature_flags` rows."""

    flags: tuple[Flag, ...] = tuple(Flag(name) for name in KNOWN_FLAGS)

    def __post_init__(self) -> None:
        names = [f.name for f in self.flags]
        if sorted(names) != sorted(KNOWN_FLAGS):
            raise Fatal(f"feature flags {names} are not exactly the known {list(KNOWN_FLAGS)}")

    @classmethod
    def from_rows(cls, rows: Mapping[str, tuple[bool, Sequence[str] | None]]) -> FeatureFlags:
        """From the table: name → (enabled, whitelist). A known name without a row is off;
        an unknown name is `Fatal` (no row can create a flag, e.g. one for the Risk agent).
        """
        unknown = sorted(set(rows) - set(KNOWN_FLAGS))
        if unknown:
            raise Fatal(f"unknown feature flags {unknown}", hint=f"known: {list(KNOWN_FLAGS)}")
        flags = []
        for name in KNOWN_FLAGS:
            enabled, whitelist = rows.get(name, (False, None))
            flags.append(Flag(name, enabled, whitelist_of(whitelist)))
        return cls(tuple(flags))

    def flag(self, name: str) -> Flag:
        """The flag called `name`; an unknown name is `NotFound("unknown_flag")`."""
        for flag in self.flags:
            if flag.name == name:
                return flag
        raise _unknown_flag(name)

    def enabled(self, name: str, symbol: str | None = None) -> bool:
        """Whether flag `name` is on for `symbol` (an empty whitelist allows every symbol).

        Without a symbol, a flag limited to a whitelist counts as off: it is not on for
        every symbol. An unknown name raises `NotFound("unknown_flag")`.
        """
        return self.flag(name).on_for(symbol)

    def for_symbol(self, symbol: str) -> dict[str, bool]:
        """Every flag's value for `symbol`: the mapping the agents' `active` reads."""
        return {flag.name: flag.on_for(symbol) for flag in self.flags}

    def agent_enabled(self, agent: str, symbol: str) -> bool:
        """Whether the flags let `agent` run for `symbol` in variant B.

        A core agent (Technical, Context, Risk) has no flag: always True. A specialist or
        sub-agent needs its flag (its own conditions still decide whether it votes). An
        unknown agent raises `NotFound("unknown_agent")`.
        """
        if agent in CORE_AGENTS:
            return True
        if agent not in AGENT_FLAGS:
            known = [*CORE_AGENTS, *AGENT_FLAGS]
            raise NotFound("unknown_agent", f"no agent {agent!r}; known: {known}")
        return self.enabled(AGENT_FLAGS[agent], symbol)


@dataclass(frozen=True, slots=True)
class ExperimentSettings:
    """The run-time experiment settings: `split_pct`, the whole percent (0-100) of
    signals' buckets sent to variant B (when the master flag is on)."""

    split_pct: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.split_pct, bool) or not isinstance(self.split_pct, int):
            raise TypeError("split_pct must be a whole number")
        if not 0 <= self.split_pct <= 100:
            raise ValueError(f"split_pct must be within 0..100, got {self.split_pct}")

    @classmethod
    def from_rows(cls, rows: Mapping[str, float]) -> ExperimentSettings:
        """From `experiment_settings` (name → value); a missing name keeps its default, an
        unknown one is `Fatal`, a fractional or out-of-range split is a `ValueError`."""
        unknown = sorted(set(rows) - set(KNOWN_SETTINGS))
        if unknown:
            raise Fatal(
                f"unknown experiment settings {unknown}", hint=f"known: {list(KNOWN_SETTINGS)}"
            )
        if SPLIT_PCT not in rows:
            return cls()
        value = float(rows[SPLIT_PCT])
        if not value.is_integer():
            raise ValueError(f"split_pct must be a whole percent within 0..100, got {value}")
        return cls(int(value))


@dataclass(frozen=True, slots=True)
class FlagsSnapshot:
    """The flags and experiment settings as read at `read_at` (the run's clock)."""

    flags: FeatureFlags
    experiment: ExperimentSettings
    read_at: datetime
