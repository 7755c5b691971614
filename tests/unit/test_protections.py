"""Freqtrade-compatible protections and the lock bookkeeping, at exact boundary times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Fatal
from engine.positions import ClosedTrade
from engine.protection_manager import LOCKED, STREAM, UNLOCKED, ProtectionManager
from engine.protections import (
    CooldownPeriod,
    Lock,
    LowProfitPairs,
    MaxDrawdown,
    ProtectionConfig,
    StoplossGuard,
    candles_to_minutes,
    create_default_protections,
    ratio_drawdown,
)

T0 = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trade(
    minutes: float, ratio: float, reason: str = "stop_loss", symbol: str = "SPY"
) -> ClosedTrade:
    return ClosedTrade(symbol, at(minutes), ratio, reason, realised_pnl=ratio * 100)


# --- StoplossGuard -------------------------------------------------------------------------

GUARD = StoplossGuard(lookback_period=60, trade_limit=2, stop_duration=120)
TWO_STOPS = [trade(0, -0.5), trade(20, -0.3, symbol="AAPL")]


def test_stoploss_guard_locks_everything_until_the_last_stop_plus_the_duration() -> None:
    lock = GUARD.global_lock(TWO_STOPS, at(30))
    assert lock == Lock("StoplossGuard", None, at(140), "2 stoplosses in 60 min", at(30))
    assert lock.applies_to("QQQ") and lock.active(at(139)) and not lock.active(at(140))


def test_stoploss_guard_lookback_excludes_a_trade_exactly_at_its_start() -> None:
    assert GUARD.global_lock(TWO_STOPS, at(59.99)) is not None
    assert GUARD.global_lock(TWO_STOPS, at(60)) is None  # the 0-minute trade is out
    future = [trade(0, -0.5), trade(31, -0.3)]
    assert GUARD.global_lock(future, at(30)) is None  # a close after now does not count


def test_stoploss_guard_counts_only_losing_stop_loss_exits() -> None:
    now = at(30)
    assert GUARD.global_lock([trade(0, -0.5), trade(10, -0.2, "profit_target")], now) is None
    assert GUARD.global_lock([trade(0, -0.5), trade(10, 0.2)], now) is None  # in profit
    assert GUARD.global_lock([trade(0, -0.5), trade(10, 0.0)], now) is None  # 0: Freqtrade
    trailing = [trade(0, -0.5), trade(10, -0.1, "trailing_stop_loss")]
    assert GUARD.global_lock(trailing, now) is not None
    strict = StoplossGuard(lookback_period=60, trade_limit=2, required_profit=-0.2)
    assert strict.global_lock([trade(0, -0.5), trade(10, -0.1)], now) is None


def test_stoploss_guard_per_pair() -> None:
    per_pair = StoplossGuard(
        lookback_period=60, trade_limit=2, stop_duration=120, only_per_pair=True
    )
    assert per_pair.global_lock(TWO_STOPS, at(30)) is None
    assert per_pair.pair_lock(TWO_STOPS, at(30), "SPY") is None  # one SPY stop only
    spy = [trade(0, -0.5), trade(10, -0.5)]
    lock = per_pair.pair_lock(spy, at(30), "spy")
    assert lock is not None and lock.symbol == "SPY" and lock.until == at(130)
    assert not lock.applies_to("AAPL")


# --- MaxDrawdown ---------------------------------------------------------------------------


def test_max_drawdown_on_cumulative_profit_ratios() -> None:
    trades = [trade(0, 0.25, "profit_target"), trade(10, -0.5), trade(20, -0.25, "time_stop")]
    # cumulative 0.25, −0.25, −0.5 → drawdown from the 0.25 peak = 0.75
    assert ratio_drawdown([0.25, -0.5, -0.25]) == 0.75
    lock = MaxDrawdown(lookback_period=60, stop_duration=30, max_allowed_drawdown=0.5).global_lock(
        trades, at(25)
    )
    assert lock is not None and lock.symbol is None and lock.until == at(50)
    assert (
        MaxDrawdown(lookback_period=60, max_allowed_drawdown=0.75).global_lock(trades, at(25))
        is None
    )
    assert MaxDrawdown(lookback_period=60, trade_limit=4).global_lock(trades, at(25)) is None
    assert MaxDrawdown().pair_lock(trades, at(25), "SPY") is None


def test_max_drawdown_peak_starts_at_the_first_trade_as_in_freqtrade() -> None:
    assert ratio_drawdown([-0.5]) == 0.0  # one losing trade alone is no drawdown
    assert ratio_drawdown([-0.25, -0.5]) == 0.5
    assert ratio_drawdown([]) == 0.0
    assert MaxDrawdown(lookback_period=60).global_lock([trade(0, -0.9)], at(1)) is None


@given(st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=50))
def test_drawdown_matches_the_cumsum_cummax_formula(ratios: list[float]) -> None:
    cumulative = np.cumsum(ratios)
    expected = float(np.max(np.maximum.accumulate(cumulative) - cumulative))
    assert ratio_drawdown(ratios) == pytest.approx(expected, abs=1e-12)


# --- CooldownPeriod ------------------------------------------------------------------------


def test_cooldown_locks_the_symbol_until_its_last_close_plus_the_duration() -> None:
    cooldown = CooldownPeriod(stop_duration=5)
    trades = [
        trade(0, 0.1, "profit_target"),
        trade(2, -0.1, "time_stop"),
        trade(3, 0.0, symbol="QQQ"),
    ]
    lock = cooldown.pair_lock(trades, at(4.99), "SPY")
    assert lock is not None and lock.symbol == "SPY" and lock.until == at(7)
    assert cooldown.pair_lock(trades, at(7), "SPY") is None  # the 2-minute close left the window
    assert cooldown.pair_lock(trades, at(1), "IBM") is None
    assert cooldown.global_lock(trades, at(1)) is None


# --- LowProfitPairs ------------------------------------------------------------------------


def test_low_profit_pairs_sums_the_symbols_ratios_in_the_window() -> None:
    low = LowProfitPairs(lookback_period=60, trade_limit=2, stop_duration=30, required_profit=0.0)
    trades = [
        trade(0, -0.25, "time_stop"),
        trade(10, 0.125, "profit_target"),
        trade(5, -1.0, symbol="QQQ"),
    ]
    lock = low.pair_lock(trades, at(20), "SPY")  # −0.125 < 0
    assert lock is not None and lock.until == at(40) and lock.symbol == "SPY"
    assert low.pair_lock(trades, at(60), "SPY") is None  # one trade left: below trade_limit
    even = [trade(0, -0.25, "time_stop"), trade(10, 0.25, "profit_target")]
    assert low.pair_lock(even, at(20), "SPY") is None  # exactly the required profit
    assert low.global_lock(trades, at(20)) is None


# --- configuration -------------------------------------------------------------------------


def test_defaults_and_config() -> None:
    names = [p.name for p in create_default_protections()]
    assert names == ["CooldownPeriod", "StoplossGuard", "MaxDrawdown", "LowProfitPairs"]
    assert len(create_default_protections(ProtectionConfig(max_drawdown=None))) == 3
    assert candles_to_minutes(24, 5) == 120
    with pytest.raises(Fatal):
        StoplossGuard(trade_limit=0)
    with pytest.raises(Fatal):
        CooldownPeriod(stop_duration=-1)


# --- the manager ---------------------------------------------------------------------------


def test_refresh_records_a_lock_once_and_unlocks_it_at_its_end() -> None:
    manager = ProtectionManager([GUARD])
    events = manager.refresh(TWO_STOPS, at(30), ["SPY"])
    assert [(e.kind, e.stream, e.entity_id, e.event_time) for e in events] == [
        (LOCKED, STREAM, "StoplossGuard:*", at(30))
    ]
    assert events[0].payload["until"] == at(140).isoformat()
    assert manager.refresh(TWO_STOPS, at(31), ["SPY"]) == []  # already held
    assert manager.refresh(TWO_STOPS, at(139), ["SPY"]) == []
    unlocked = manager.refresh(TWO_STOPS, at(140), ["SPY"])
    assert [(e.kind, e.event_time) for e in unlocked] == [(UNLOCKED, at(140))]
    assert manager.locks == ()


def test_a_held_lock_outlives_the_lookback_window() -> None:
    manager = ProtectionManager([GUARD])
    manager.refresh(TWO_STOPS, at(30), [])
    later = at(100)  # both stops are now older than the 60-minute lookback
    assert GUARD.global_lock(TWO_STOPS, later) is None
    held = manager.check(TWO_STOPS, later, "QQQ")
    assert held is not None and held.until == at(140)
    assert ProtectionManager([GUARD]).check(TWO_STOPS, later, "QQQ") is None
    rebuilt = ProtectionManager([GUARD], locks=manager.locks)  # after a restart
    assert rebuilt.check(TWO_STOPS, later, "QQQ") == held


def test_check_returns_the_longest_lock_that_applies() -> None:
    manager = ProtectionManager([CooldownPeriod(stop_duration=5), GUARD])
    assert manager.check([trade(0, 0.1, "profit_target")], at(1), "SPY") == Lock(
        "CooldownPeriod", "SPY", at(5), "cooldown for 5 min", at(1)
    )
    lock = manager.check(TWO_STOPS, at(30), "SPY")
    assert lock is not None and lock.protection == "StoplossGuard"
    assert manager.check([], at(30), "SPY") is None


def test_a_global_lock_covers_the_pair_locks() -> None:
    manager = ProtectionManager([GUARD, CooldownPeriod(stop_duration=5)])
    events = manager.refresh([*TWO_STOPS, trade(29, 0.1, "profit_target")], at(30), ["SPY"])
    assert [e.entity_id for e in events] == ["StoplossGuard:*"]  # SPY's cooldown is covered
