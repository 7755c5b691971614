"""Exit rules: each rule at its boundary, the documented priority, and the vectorised form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.calendar import NEW_YORK
from engine.errors import Fatal
from engine.exits import (
    DTE_THRESHOLD,
    EXIT_PRIORITY,
    NO_EXIT,
    PROFIT_TARGET,
    SESSION_END,
    STOP_LOSS,
    TIME_STOP,
    ExitRules,
    exit_codes,
    exit_reason,
)
from engine.marketdata import Right
from engine.positions import MarkedPosition, Position, mark

OPENED = datetime(2013, 10, 16, 14, 0, tzinfo=UTC)  # 10:00 ET
CLOSE = datetime(2013, 10, 16, 20, 0, tzinfo=UTC)  # 16:00 ET
EXPIRY = date(2013, 10, 18)
ALL = ExitRules(
    profit_target_pct=0.5,
    stop_loss_pct=0.5,
    time_stop_minutes=120,
    dte_threshold_days=0,
    session_end_minutes_before_close=15,
)


def position(avg: float = 2.0) -> Position:
    return Position(
        position_key="live/signal/1",
        engine="live",
        symbol="SPY",
        instrument="SPY   131018C00167000",
        asset_class="option",
        side="long",
        quantity=1,
        avg_price=avg,
        multiplier=100,
        opened_at=OPENED,
        right=Right.CALL,
        strike=167.0,
        expiry=EXPIRY,
    )


def at(price: float, now: datetime) -> MarkedPosition:
    return mark(position(), price, now)


def reason(
    price: float, now: datetime, rules: ExitRules = ALL, close: datetime | None = CLOSE
) -> str | None:
    return exit_reason(at(price, now), now, EXPIRY, close, rules)


def test_nothing_fires_inside_every_threshold() -> None:
    assert reason(2.0, OPENED + timedelta(minutes=30)) is None
    assert exit_reason(at(0.1, OPENED), OPENED, EXPIRY, CLOSE, ExitRules()) is None


def test_price_rules_are_inclusive() -> None:
    soon = OPENED + timedelta(minutes=1)
    assert reason(1.0, soon) == STOP_LOSS  # exactly −50 %
    assert reason(1.01, soon) is None
    assert reason(3.0, soon) == PROFIT_TARGET  # exactly +50 %
    assert reason(2.99, soon) is None
    tight = ExitRules(profit_target_pct=0.1)
    assert exit_reason(mark(position(1.1), 1.21, soon), soon, None, None, tight) == PROFIT_TARGET


def test_time_stop_at_exactly_the_holding_time() -> None:
    limit = OPENED + timedelta(minutes=120)
    assert reason(2.0, limit - timedelta(seconds=1)) is None
    assert reason(2.0, limit) == TIME_STOP


def test_session_end_at_exactly_n_minutes_before_the_close() -> None:
    rules = ExitRules(session_end_minutes_before_close=15)
    edge = CLOSE - timedelta(minutes=15)
    assert reason(2.0, edge - timedelta(seconds=1), rules) is None
    assert reason(2.0, edge, rules) == SESSION_END
    assert reason(2.0, edge, rules, close=None) is None  # outside a session: rule skipped


def test_days_to_expiry_use_the_new_york_date() -> None:
    rules = ExitRules(dte_threshold_days=1)
    late_wednesday = datetime(2013, 10, 17, 3, 0, tzinfo=UTC)  # 23:00 ET on 10-16: 2 days
    assert late_wednesday.astimezone(NEW_YORK).date() == date(2013, 10, 16)
    assert exit_reason(at(2.0, late_wednesday), late_wednesday, EXPIRY, None, rules) is None
    thursday = datetime(2013, 10, 17, 14, 0, tzinfo=UTC)
    assert exit_reason(at(2.0, thursday), thursday, EXPIRY, None, rules) == DTE_THRESHOLD
    assert exit_reason(at(2.0, thursday), thursday, None, None, rules) is None  # shares


def test_priority_when_several_rules_fire() -> None:
    expiry_day_close = datetime(2013, 10, 18, 19, 50, tzinfo=UTC)  # every time rule fires
    close = datetime(2013, 10, 18, 20, 0, tzinfo=UTC)
    assert exit_reason(at(0.5, expiry_day_close), expiry_day_close, EXPIRY, close, ALL) == STOP_LOSS
    assert exit_reason(at(4.0, expiry_day_close), expiry_day_close, EXPIRY, close, ALL) == (
        PROFIT_TARGET
    )
    assert exit_reason(at(2.0, expiry_day_close), expiry_day_close, EXPIRY, close, ALL) == (
        DTE_THRESHOLD
    )
    same_day = OPENED + timedelta(minutes=350)  # session end and time stop both fire
    assert reason(2.0, same_day) == SESSION_END
    assert EXIT_PRIORITY == (STOP_LOSS, PROFIT_TARGET, DTE_THRESHOLD, SESSION_END, TIME_STOP)


def test_rules_from_the_exit_rules_table() -> None:
    rules = ExitRules.from_rows(
        {
            "profit_target_pct": (0.5, True),
            "stop_loss_pct": (0.3, False),
            "dte_threshold_days": (1.0, True),
        }
    )
    assert rules == ExitRules(profit_target_pct=0.5, dte_threshold_days=1)
    assert isinstance(rules.dte_threshold_days, int)
    with pytest.raises(Fatal):
        ExitRules.from_rows({"trailing_stop": (0.1, True)})
    with pytest.raises(Fatal):
        ExitRules(stop_loss_pct=-0.2)
    with pytest.raises(Fatal):
        ExitRules(profit_target_pct=0.0)


# --- properties ----------------------------------------------------------------------------

maybe_ratio = st.none() | st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0])
maybe_minutes = st.none() | st.integers(0, 400)
rules_st = st.builds(
    ExitRules,
    profit_target_pct=maybe_ratio,
    stop_loss_pct=maybe_ratio,
    time_stop_minutes=maybe_minutes,
    dte_threshold_days=st.none() | st.integers(0, 5),
    session_end_minutes_before_close=st.none() | st.integers(0, 60),
)


@dataclass(frozen=True)
class State:
    """A position's state in minutes and days, for comparing the two forms."""

    price: float
    held: int
    dte: int | None
    to_close: int | None


state_st = st.builds(
    State,
    price=st.floats(0.0, 8.0),
    held=st.integers(0, 600),
    dte=st.none() | st.integers(0, 10),
    to_close=st.none() | st.integers(-30, 400),
)


def scalar_reason(state: State, rules: ExitRules) -> str | None:
    now = OPENED + timedelta(minutes=state.held)
    today = now.astimezone(NEW_YORK).date()
    expiry = None if state.dte is None else today + timedelta(days=state.dte)
    close = None if state.to_close is None else now + timedelta(minutes=state.to_close)
    return exit_reason(at(state.price, now), now, expiry, close, rules)


@given(state_st, rules_st)
def test_the_reason_is_the_first_rule_that_fires_alone(state: State, rules: ExitRules) -> None:
    alone = {
        STOP_LOSS: ExitRules(stop_loss_pct=rules.stop_loss_pct),
        PROFIT_TARGET: ExitRules(profit_target_pct=rules.profit_target_pct),
        DTE_THRESHOLD: ExitRules(dte_threshold_days=rules.dte_threshold_days),
        SESSION_END: ExitRules(
            session_end_minutes_before_close=rules.session_end_minutes_before_close
        ),
        TIME_STOP: ExitRules(time_stop_minutes=rules.time_stop_minutes),
    }
    firing = [name for name in EXIT_PRIORITY if scalar_reason(state, alone[name]) == name]
    assert scalar_reason(state, rules) == (firing[0] if firing else None)


@given(st.lists(state_st, min_size=1, max_size=20), rules_st)
def test_vectorised_codes_match_the_scalar_rule(states: list[State], rules: ExitRules) -> None:
    def column(name: str) -> np.ndarray:
        values = [getattr(s, name) for s in states]
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    ratio = (column("price") - 2.0) / 2.0  # as `mark` computes it: the avg price is 2.0
    codes = exit_codes(ratio, column("dte"), column("to_close"), column("held"), rules)
    expected = [scalar_reason(s, rules) for s in states]
    got = [None if c == NO_EXIT else EXIT_PRIORITY[c] for c in codes]
    assert got == expected
