"""Pre-trade risk checks: approve an entry or reject it with a reason code.

Checks run in this order and the first that fails is the reason:

| code                     | rejects when                                               |
|--------------------------|------------------------------------------------------------|
| `market_closed`          | not in regular hours (the caller asks the calendar)        |
| `protection_lock:<name>` | a lock of protection `<name>` applies to the symbol        |
| `max_open_positions`     | open positions >= max_open_positions                       |
| `max_per_symbol`         | open positions on the symbol >= max_positions_per_symbol   |
| `per_trade_risk`         | capital_needed > capital_available × per_trade_risk_pct    |
| `insufficient_capital`   | capital_needed > capital_available − capital committed     |

Capital committed is the cost basis (avg price × quantity × multiplier) of the open
positions; a symbol is the underlying, compared case-insensitively.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from engine.errors import Fatal
from engine.positions import Position
from engine.protections import Lock

# Cents do not make a trade unaffordable: comparisons of money allow this much.
MONEY_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits from the `risk_limits` table. `per_trade_risk_pct` per 1.00 (0.02 = 2 %)."""

    max_open_positions: int = 5
    max_positions_per_symbol: int = 1
    capital_available: float = 10_000.0
    per_trade_risk_pct: float = 0.02

    def __post_init__(self) -> None:
        if self.max_open_positions < 0 or self.max_positions_per_symbol < 0:
            raise Fatal("max_open_positions and max_positions_per_symbol must be >= 0")
        if not (math.isfinite(self.capital_available) and self.capital_available >= 0):
            raise Fatal(f"capital_available must be >= 0, got {self.capital_available!r}")
        if not (math.isfinite(self.per_trade_risk_pct) and 0 < self.per_trade_risk_pct <= 1):
            raise Fatal(
                f"per_trade_risk_pct is a fraction in (0, 1], got {self.per_trade_risk_pct!r}"
            )

    @classmethod
    def from_rows(cls, rows: Mapping[str, float]) -> RiskLimits:
        """From `risk_limits` rows (name → value); missing names keep their default."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(rows) - known)
        if unknown:
            raise Fatal(f"unknown risk limits {unknown}", hint=f"known: {sorted(known)}")
        ints = {"max_open_positions", "max_positions_per_symbol"}
        values = {k: int(v) if k in ints else float(v) for k, v in rows.items()}
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """approved, or rejected with `reason` (a code from the module table) and a detail."""

    approved: bool
    reason: str | None = None
    detail: str | None = None


APPROVED = RiskDecision(approved=True)


def _reject(reason: str, detail: str) -> RiskDecision:
    return RiskDecision(approved=False, reason=reason, detail=detail)


def check_entry(
    symbol: str,
    open_positions: Sequence[Position],
    limits: RiskLimits,
    *,
    market_open: bool,
    lock: Lock | None,
    capital_needed: float,
) -> RiskDecision:
    """Approve or reject an entry on `symbol` needing `capital_needed` (rules above)."""
    if not market_open:
        return _reject("market_closed", "the exchange is not in regular hours")
    if lock is not None and lock.applies_to(symbol):
        return _reject(f"protection_lock:{lock.protection}", f"{lock.reason} until {lock.until}")
    if len(open_positions) >= limits.max_open_positions:
        return _reject(
            "max_open_positions", f"{len(open_positions)} open, limit {limits.max_open_positions}"
        )
    same = sum(1 for p in open_positions if p.symbol.upper() == symbol.upper())
    if same >= limits.max_positions_per_symbol:
        return _reject(
            "max_per_symbol", f"{same} open on {symbol}, limit {limits.max_positions_per_symbol}"
        )
    return _capital_check(open_positions, limits, capital_needed)


def _capital_check(
    open_positions: Sequence[Position], limits: RiskLimits, capital_needed: float
) -> RiskDecision:
    if not (math.isfinite(capital_needed) and capital_needed >= 0):
        return _reject("insufficient_capital", f"capital needed {capital_needed!r} is not valid")
    per_trade = limits.capital_available * limits.per_trade_risk_pct
    if capital_needed > per_trade + MONEY_TOLERANCE:
        return _reject("per_trade_risk", f"needs {capital_needed:.2f}, per-trade {per_trade:.2f}")
    free = limits.capital_available - sum(p.cost_basis for p in open_positions)
    if capital_needed > free + MONEY_TOLERANCE:
        return _reject("insufficient_capital", f"needs {capital_needed:.2f}, free {free:.2f}")
    return APPROVED
