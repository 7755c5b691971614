"""What every Engine 2 agent shares: the enrichment it reads, the decision it returns.

An agent is a pure object: `active(enrichment, flags)` says whether it votes on this
signal, `decide(enrichment)` returns a frozen `AgentDecision` (or None when its pattern is
absent: no vote). Agents never read a clock or do I/O: everything they need is in the
`Enrichment`, computed once per signal and shared (in Ray's object store) by every agent.
Each agent's rules are written in docs/agents.md.

Groups weigh differently in the meta-decision (`engine.meta`): `core` (Technical,
Context, Risk: always active when variant B runs), `specialist` (ORB, Strat, TTM:
their flag on plus their conditions) and `sub` (Satyland: flag on; never vetoes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from engine.marketdata import Bar
from engine.positions import Position
from engine.risk import RiskLimits

Bias = Literal["long", "short", "neutral"]
Group = Literal["core", "specialist", "sub"]


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Everything an agent may read about one signal, as of `as_of` (nothing later).

    `bars_1m` are the underlying's 1-minute bars up to `as_of`, oldest first, regular
    hours only (the current session and enough earlier ones for EMA 200 on the signal's
    timeframe, as far as the feed holds them); `bars_1d` are daily bars up to the
    previous session (ATR levels, higher-timeframe trend, gaps). `bars_tf` are the
    complete bars of the signal's `timeframe` built from them once (`engine.resample`:
    intraday slots aligned to each session's open). `engine.enrichment.build_enrichment`
    fills all three.
    Portfolio fields are for the Risk agent: the shadow engine's open positions, the risk
    limits and whether the exchange is in regular hours. `realised_drawdown_pct` is a
    fraction of capital (0.10 = 10 %), like `RiskLimits.per_trade_risk_pct`.
    """

    signal_id: int
    symbol: str
    direction: Literal["long", "short"]
    timeframe: str
    as_of: datetime
    bars_1m: tuple[Bar, ...]
    bars_1d: tuple[Bar, ...]
    session_open: datetime
    session_close: datetime
    market_open: bool
    open_positions: tuple[Position, ...] = ()
    limits: RiskLimits = field(default_factory=RiskLimits)
    capital_needed: float = 0.0
    realised_drawdown_pct: float = 0.0
    bars_tf: tuple[Bar, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentDecision:
    """One agent's vote. `confidence` lies within the agent's own bounds (docs/agents.md);
    `veto` only ever comes from the Risk agent. `features` are the numbers it used, and
    `config` and `version` what produced it (both go into the event log)."""

    agent: str
    group: Group
    bias: Bias
    confidence: float
    reasons: tuple[str, ...]
    features: Mapping[str, float]
    config: Mapping[str, float | int | str]
    version: str
    veto: bool = False


class Agent(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def group(self) -> Group: ...

    @property
    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) confidence it can return."""
        ...

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool: ...

    def decide(self, enrichment: Enrichment) -> AgentDecision | None: ...
