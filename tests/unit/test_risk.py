"""Pre-trade risk checks: each reason code, their order, and limits from table rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import Fatal
from engine.positions import Position
from engine.protections import Lock
from engine.risk import RiskDecision, RiskLimits, check_entry

NOW = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)
LIMITS = RiskLimits(max_open_positions=3, max_positions_per_symbol=1, capital_available=10_000.0)


def held(symbol: str, avg: float = 1.0, quantity: int = 1) -> Position:
    return Position(
        position_key=f"live/signal/{symbol}",
        engine="live",
        symbol=symbol,
        instrument=symbol,
        asset_class="equity",
        side="long",
        quantity=quantity,
        avg_price=avg,
        multiplier=1,
        opened_at=NOW,
    )


def lock(symbol: str | None) -> Lock:
    return Lock("StoplossGuard", symbol, NOW + timedelta(hours=1), "3 stoplosses", NOW)


def decide(
    symbol: str = "SPY",
    positions: tuple[Position, ...] = (),
    market_open: bool = True,
    active: Lock | None = None,
    needed: float = 150.0,
) -> RiskDecision:
    return check_entry(
        symbol, positions, LIMITS, market_open=market_open, lock=active, capital_needed=needed
    )


def test_an_entry_within_every_limit_is_approved() -> None:
    assert decide() == RiskDecision(approved=True)
    assert decide(positions=(held("AAPL"), held("IBM"))).approved


def test_reason_codes() -> None:
    assert decide(market_open=False).reason == "market_closed"
    assert decide(active=lock(None)).reason == "protection_lock:StoplossGuard"
    assert decide(active=lock("spy")).reason == "protection_lock:StoplossGuard"
    three = (held("AAPL"), held("IBM"), held("QQQ"))
    assert decide(positions=three).reason == "max_open_positions"
    assert decide(positions=(held("spy"),)).reason == "max_per_symbol"
    assert decide(needed=200.01).reason == "per_trade_risk"  # 2 % of 10,000 is 200
    assert decide(needed=200.0).approved
    committed = (held("AAPL", avg=99.0, quantity=100),)  # 9,900 committed, 100 free
    assert decide(positions=committed, needed=100.0).approved
    decision = decide(positions=committed, needed=100.01)
    assert decision.reason == "insufficient_capital" and not decision.approved
    assert decision.detail is not None and "free 100.00" in decision.detail


def test_a_lock_on_another_symbol_does_not_block() -> None:
    assert decide(active=lock("AAPL")).approved


def test_checks_run_in_the_documented_order() -> None:
    everything = decide(
        market_open=False,
        active=lock(None),
        positions=(held("SPY"), held("IBM"), held("QQQ")),
        needed=1e9,
    )
    assert everything.reason == "market_closed"
    locked = decide(active=lock(None), positions=(held("SPY"),))
    assert locked.reason == "protection_lock:StoplossGuard"
    full = (held("SPY"), held("IBM"), held("QQQ"))
    assert decide(positions=full, needed=1e9).reason == "max_open_positions"


def test_limits_from_the_risk_limits_table() -> None:
    limits = RiskLimits.from_rows({"max_open_positions": 3.0, "capital_available": 5_000.0})
    assert limits.max_open_positions == 3 and isinstance(limits.max_open_positions, int)
    assert limits.capital_available == 5_000.0 and limits.max_positions_per_symbol == 1
    with pytest.raises(Fatal):
        RiskLimits.from_rows({"max_leverage": 2.0})
    with pytest.raises(Fatal):
        RiskLimits(per_trade_risk_pct=2.0)
    with pytest.raises(Fatal):
        RiskLimits(capital_available=-1.0)
