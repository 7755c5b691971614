"""Protections from the settings, locks back from their events, closed positions as trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.protection_locks import closed_trade_from_row
from engine.errors import Fatal
from engine.protection_manager import LOCKED, ProtectionManager, lock_event, lock_from_payload
from engine.protections import (
    CooldownPeriod,
    Lock,
    LowProfitPairs,
    MaxDrawdown,
    ProtectionConfig,
    StoplossGuard,
    create_default_protections,
    history_minutes,
)
from engine.settings import PROTECTIONS, load_settings

T0 = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)


def test_the_default_settings_enable_every_protection_but_the_cooldown() -> None:
    from_settings = create_default_protections(load_settings({}))
    defaults = ProtectionConfig()
    assert from_settings == (
        defaults.stoploss_guard,
        defaults.max_drawdown,
        defaults.low_profit_pairs,
    )
    assert [p.name for p in create_default_protections()] == list(PROTECTIONS)


def test_every_parameter_comes_from_its_variable() -> None:
    settings = load_settings(
        {
            "TANDEM_PROTECTIONS": "LowProfitPairs, CooldownPeriod,StoplossGuard,MaxDrawdown",
            "TANDEM_COOLDOWNPERIOD_STOP_DURATION": "2",
            "TANDEM_STOPLOSSGUARD_LOOKBACK_PERIOD": "30",
            "TANDEM_STOPLOSSGUARD_TRADE_LIMIT": "4",
            "TANDEM_STOPLOSSGUARD_STOP_DURATION": "15",
            "TANDEM_STOPLOSSGUARD_ONLY_PER_PAIR": "true",
            "TANDEM_STOPLOSSGUARD_REQUIRED_PROFIT": "-0.1",
            "TANDEM_MAXDRAWDOWN_LOOKBACK_PERIOD": "120",
            "TANDEM_MAXDRAWDOWN_TRADE_LIMIT": "5",
            "TANDEM_MAXDRAWDOWN_STOP_DURATION": "90",
            "TANDEM_MAXDRAWDOWN_MAX_ALLOWED_DRAWDOWN": "0.2",
            "TANDEM_LOWPROFITPAIRS_LOOKBACK_PERIOD": "45",
            "TANDEM_LOWPROFITPAIRS_TRADE_LIMIT": "1",
            "TANDEM_LOWPROFITPAIRS_STOP_DURATION": "10",
            "TANDEM_LOWPROFITPAIRS_REQUIRED_PROFIT": "0.05",
        }
    )
    assert settings.protection_names == (
        "LowProfitPairs",
        "CooldownPeriod",
        "StoplossGuard",
        "MaxDrawdown",
    )
    assert create_default_protections(settings) == (  # evaluation order, whatever the list's
        CooldownPeriod(stop_duration=2),
        StoplossGuard(30, 4, 15, only_per_pair=True, required_profit=-0.1),
        MaxDrawdown(120, 5, 90, max_allowed_drawdown=0.2),
        LowProfitPairs(45, 1, 10, required_profit=0.05),
    )


def test_empty_turns_every_protection_off() -> None:
    assert create_default_protections(load_settings({"TANDEM_PROTECTIONS": ""})) == ()
    only = load_settings({"TANDEM_PROTECTIONS": "CooldownPeriod"})
    assert create_default_protections(only) == (CooldownPeriod(stop_duration=5),)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TANDEM_PROTECTIONS", "StoplossGuard,Cooldown"),
        ("TANDEM_PROTECTIONS", "stoplossguard"),  # Freqtrade's names are case-sensitive
        ("TANDEM_STOPLOSSGUARD_TRADE_LIMIT", "0"),
        ("TANDEM_LOWPROFITPAIRS_STOP_DURATION", "-1"),
        ("TANDEM_MAXDRAWDOWN_MAX_ALLOWED_DRAWDOWN", "nan"),
        ("TANDEM_STOPLOSSGUARD_ONLY_PER_PAIR", "sometimes"),
    ],
)
def test_a_bad_protection_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(Fatal) as info:
        load_settings({variable: value})
    assert info.value.message.startswith(f"{variable}:")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(Fatal, match="known: CooldownPeriod, StoplossGuard"):
        load_settings({"TANDEM_PROTECTIONS": "Cooldown"})


def test_history_is_the_longest_lookback_or_cooldown() -> None:
    assert history_minutes(create_default_protections()) == 2880
    assert history_minutes([CooldownPeriod(stop_duration=30)]) == 30
    assert history_minutes([CooldownPeriod(90), LowProfitPairs(lookback_period=60)]) == 90
    assert history_minutes([]) == 0


@pytest.mark.parametrize("symbol", [None, "BAC"])
def test_a_lock_comes_back_from_its_event(symbol: str | None) -> None:
    lock = Lock("CooldownPeriod", symbol, T0 + timedelta(minutes=5), "cooldown for 5 min", T0)
    event = lock_event(LOCKED, lock, T0)
    assert lock_from_payload(event.payload) == lock
    # a manager that holds it records nothing new for the same lock
    trades = [closed_trade_from_row(row("BAC", T0, -10.0, 200.0))]
    manager = ProtectionManager(
        [CooldownPeriod(stop_duration=5)], [lock_from_payload(event.payload)]
    )
    assert manager.refresh(trades, T0, ["BAC"]) == []


def row(
    symbol: str, closed_at: datetime, realised: float | None, basis: float | None
) -> dict[str, object]:
    return {
        "symbol": symbol,
        "instrument": f"{symbol}   131018C00015000",
        "side": "long",
        "closed_at": closed_at,
        "realised_pnl": realised,
        "exit_reason": "stop_loss",
        "cost_basis": basis,
    }


def test_a_closed_position_is_a_trade_with_its_return_on_cost() -> None:
    trade = closed_trade_from_row(row("BAC", T0, -50.0, 200.0))
    assert (trade.symbol, trade.closed_at, trade.exit_reason) == ("BAC", T0, "stop_loss")
    assert trade.profit_ratio == -0.25 and trade.realised_pnl == -50.0
    unknown = closed_trade_from_row({**row("BAC", T0, None, None), "exit_reason": None})
    assert (unknown.profit_ratio, unknown.realised_pnl, unknown.exit_reason) == (0.0, 0.0, "exit")
