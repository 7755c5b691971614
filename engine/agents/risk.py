"""The Risk agent (core): an absolute veto, never a direction.

It runs Engine 1's pre-trade check (`engine.risk.check_entry`: market hours, open
positions, positions per symbol, per-trade size, free capital) on the shadow book in the
`Enrichment`, then the drawdown limit. The first rule that fails vetoes the trade; no flag
can turn the agent off. Rules in docs/agents.md, "Risk".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from engine.agents.base import AgentDecision, Enrichment, Group
from engine.agents.series import finite
from engine.risk import RiskDecision, check_entry

VERSION = "risk/1"
VETO_CONFIDENCE = 100.0


@dataclass(frozen=True, slots=True)
class RiskAgentConfig:
    """`max_drawdown_pct`: realised drawdown (fraction of capital) at which entries stop."""

    max_drawdown_pct: float = 0.10

    def __post_init__(self) -> None:
        if not 0.0 < self.max_drawdown_pct <= 1.0:
            raise ValueError(f"max_drawdown_pct is a fraction in (0, 1], got {self}")


class RiskAgent:
    """Core agent, active whatever the flags say; vetoes with confidence 100, else
    approves with bias neutral and confidence 0 (it never votes on direction)."""

    def __init__(self, config: RiskAgentConfig | None = None) -> None:
        self._config = config or RiskAgentConfig()

    @property
    def name(self) -> str:
        return "risk"

    @property
    def group(self) -> Group:
        return "core"

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, VETO_CONFIDENCE)

    def active(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> bool:
        """Always True: no flag value disables the veto."""
        return True

    def decide(self, enrichment: Enrichment) -> AgentDecision:
        verdict = self.check(enrichment)
        veto = not verdict.approved
        reasons = (
            (f"veto {verdict.reason}: {verdict.detail}",) if veto else ("every risk rule passes",)
        )
        return AgentDecision(
            agent=self.name,
            group=self.group,
            bias="neutral",
            confidence=VETO_CONFIDENCE if veto else 0.0,
            reasons=reasons,
            features=_features(enrichment),
            config=asdict(self._config),
            version=VERSION,
            veto=veto,
        )

    def check(self, enrichment: Enrichment) -> RiskDecision:
        """Engine 1's entry check, then the drawdown limit; the first failure is the answer."""
        verdict = check_entry(
            enrichment.symbol,
            enrichment.open_positions,
            enrichment.limits,
            market_open=enrichment.market_open,
            lock=None,
            capital_needed=enrichment.capital_needed,
        )
        drawdown, limit = enrichment.realised_drawdown_pct, self._config.max_drawdown_pct
        if verdict.approved and not drawdown < limit:
            return RiskDecision(
                approved=False,
                reason="max_drawdown",
                detail=f"realised drawdown {drawdown:.4f} >= limit {limit:.4f}",
            )
        return verdict


def _features(enrichment: Enrichment) -> dict[str, float]:
    limits = enrichment.limits
    committed = sum(p.cost_basis for p in enrichment.open_positions)
    return finite(
        {
            "open_positions": float(len(enrichment.open_positions)),
            "capital_needed": enrichment.capital_needed,
            "capital_committed": committed,
            "capital_free": limits.capital_available - committed,
            "per_trade_budget": limits.capital_available * limits.per_trade_risk_pct,
            "realised_drawdown_pct": enrichment.realised_drawdown_pct,
            "market_open": 1.0 if enrichment.market_open else 0.0,
        }
    )
