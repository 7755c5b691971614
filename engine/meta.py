"""The meta-decision: the active agents' votes on one signal turned into trade or no trade.

Rules (docs/agents.md, "Meta-decision"), all set by a frozen `MetaConfig`:

1. **Veto first.** Any decision with `veto` (only the Risk agent gives one) blocks the
   trade, whatever the votes say.
2. **Weights by group.** Voters are the decisions of agents not in `non_voting` (Risk: it
   gates, it does not vote on direction). Each group with at least one voter gets its
   base weight (specialists 0.40, core 0.35, sub-agents 0.25) renormalised over the
   groups present, shared equally by its voters. The weights of the voters sum to 1.
3. **Bias by confidence-weighted vote.** score = Σ weight × confidence × sign, sign +1
   long, −1 short, 0 neutral (a neutral voter keeps its weight and so dilutes the
   score). Bias long when score > 0, short when < 0, else neutral; weighted confidence =
   |score|, on the agents' own 0–100 scale.
4. **Trade** when nothing vetoes, the bias is the alert's direction and the weighted
   confidence is at least `threshold` (default 60; compared with a 1e-9 tolerance).

`MetaDecision` records every input decision, every weight, the threshold and the
configuration; `to_payload()` gives it as JSON-able data for the event log.
`cast_vote` is what one agent actor runs: the activation rule, then the decision,
checked against the agent's own bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from engine.agents.base import Agent, AgentDecision, Bias, Enrichment, Group
from engine.errors import Fatal

METHOD = "group-weighted-vote/1"
TOLERANCE = 1e-9
GROUPS: tuple[Group, ...] = ("specialist", "core", "sub")
_SIGN = {"long": 1.0, "short": -1.0, "neutral": 0.0}

Reason = Literal["trade", "veto", "no_votes", "bias_disagrees", "below_threshold"]


@dataclass(frozen=True, slots=True)
class MetaConfig:
    """Base weight of each group, the confidence threshold and the non-voting agents."""

    specialist_weight: float = 0.40
    core_weight: float = 0.35
    sub_weight: float = 0.25
    threshold: float = 60.0
    non_voting: tuple[str, ...] = ("risk",)

    def __post_init__(self) -> None:
        weights = (self.specialist_weight, self.core_weight, self.sub_weight)
        if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
            raise Fatal(f"group weights must be finite, >= 0 and not all 0, got {weights}")
        if not (math.isfinite(self.threshold) and 0 <= self.threshold <= 100):
            raise Fatal(f"threshold must be within 0..100, got {self.threshold!r}")

    def group_weight(self, group: Group) -> float:
        return {
            "specialist": self.specialist_weight,
            "core": self.core_weight,
            "sub": self.sub_weight,
        }[group]


@dataclass(frozen=True, slots=True)
class MetaDecision:
    """The decision on one signal with everything that produced it.

    `weights` maps each voter to its weight and `group_weights` each group present to its
    renormalised weight; `score` is the signed vote, `weighted_confidence` its size.
    """

    signal_id: int
    alert_direction: Literal["long", "short"]
    trade: bool
    reason: Reason
    bias: Bias
    score: float
    weighted_confidence: float
    threshold: float
    vetoed_by: tuple[str, ...]
    inputs: tuple[AgentDecision, ...]
    weights: Mapping[str, float]
    group_weights: Mapping[str, float]
    config: MetaConfig
    method: str = METHOD

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON data (non-finite numbers become null)."""
        return {
            "signal_id": self.signal_id,
            "alert_direction": self.alert_direction,
            "trade": self.trade,
            "reason": self.reason,
            "bias": self.bias,
            "score": _json_number(self.score),
            "weighted_confidence": _json_number(self.weighted_confidence),
            "threshold": self.threshold,
            "vetoed_by": list(self.vetoed_by),
            "inputs": [decision_payload(d) for d in self.inputs],
            "weights": {k: _json_number(v) for k, v in self.weights.items()},
            "group_weights": {k: _json_number(v) for k, v in self.group_weights.items()},
            "config": {**asdict(self.config), "non_voting": list(self.config.non_voting)},
            "method": self.method,
        }


def decision_payload(decision: AgentDecision) -> dict[str, Any]:
    """One agent decision as plain JSON data (non-finite numbers become null)."""
    return {
        "agent": decision.agent,
        "group": decision.group,
        "bias": decision.bias,
        "confidence": _json_number(decision.confidence),
        "veto": decision.veto,
        "reasons": list(decision.reasons),
        "features": {k: _json_number(v) for k, v in decision.features.items()},
        "config": {
            k: _json_number(v) if isinstance(v, float) else v for k, v in decision.config.items()
        },
        "version": decision.version,
    }


def weigh(
    decisions: Sequence[AgentDecision], config: MetaConfig
) -> tuple[dict[str, float], dict[str, float]]:
    """(weight per voting agent, renormalised weight per group present), rule 2."""
    voters = [d for d in decisions if d.agent not in config.non_voting]
    names = [d.agent for d in decisions]
    if len(set(names)) != len(names):
        raise Fatal(f"one decision per agent expected, got {sorted(names)}")
    present = {d.group for d in voters}
    total = sum(config.group_weight(g) for g in present)
    if total <= 0:
        return {}, {}
    groups: dict[str, float] = {g: config.group_weight(g) / total for g in GROUPS if g in present}
    counts = {g: sum(1 for d in voters if d.group == g) for g in groups}
    return {d.agent: groups[d.group] / counts[d.group] for d in voters}, groups


def decide(
    signal_id: int,
    alert_direction: Literal["long", "short"],
    decisions: Sequence[AgentDecision],
    config: MetaConfig | None = None,
) -> MetaDecision:
    """The meta-decision on one signal from its agents' decisions (module doc)."""
    cfg = config or MetaConfig()
    weights, groups = weigh(decisions, cfg)
    by_name = {d.agent: d for d in decisions}
    score = sum(w * by_name[a].confidence * _SIGN[by_name[a].bias] for a, w in weights.items())
    if abs(score) <= TOLERANCE:
        score = 0.0  # long and short votes that cancel out
    bias: Bias = "long" if score > 0 else "short" if score < 0 else "neutral"
    vetoed_by = tuple(d.agent for d in decisions if d.veto)
    confidence = abs(score)
    reason: Reason = "trade"
    if vetoed_by:
        reason = "veto"
    elif not weights:
        reason = "no_votes"
    elif bias != alert_direction:
        reason = "bias_disagrees"
    elif confidence < cfg.threshold - TOLERANCE:
        reason = "below_threshold"
    return MetaDecision(
        signal_id=signal_id,
        alert_direction=alert_direction,
        trade=reason == "trade",
        reason=reason,
        bias=bias,
        score=score,
        weighted_confidence=confidence,
        threshold=cfg.threshold,
        vetoed_by=vetoed_by,
        inputs=tuple(decisions),
        weights=weights,
        group_weights=groups,
        config=cfg,
    )


def cast_vote(
    agent: Agent, enrichment: Enrichment, flags: Mapping[str, bool]
) -> AgentDecision | None:
    """One agent's vote on a signal: None when it is not active or its pattern is absent.

    Raises `Fatal` when the decision breaks the agent's own contract (another name or
    group, or a confidence outside its bounds): a bug, not a market condition.
    """
    if not agent.active(enrichment, flags):
        return None
    decision = agent.decide(enrichment)
    if decision is None:
        return None
    low, high = agent.bounds
    if decision.agent != agent.name or decision.group != agent.group:
        raise Fatal(
            f"agent {agent.name} ({agent.group}) answered as {decision.agent} ({decision.group})"
        )
    if not low <= decision.confidence <= high:
        raise Fatal(f"agent {agent.name}: confidence {decision.confidence} outside {low}..{high}")
    return decision


def _json_number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
