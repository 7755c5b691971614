"""Spread models, realised volatility and option value used where nothing was recorded."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Rejected
from engine.marketdata import Right
from engine.pricing import bs_price
from engine.quote_models import (
    OPTION_SPREAD_FRACTION,
    daily_realised_vol,
    equity_bid_ask,
    minute_realised_vol,
    option_bid_ask,
    option_value,
    year_fraction,
)
from engine.symbols import SymbolProperties, on_grid, option_tick

SPY = SymbolProperties("SPY", option_tick_above=0.01)
GOOG = SymbolProperties("GOOG")  # $0.01 below $3, $0.05 above


@given(
    value=st.floats(min_value=0.0, max_value=2_000.0, allow_nan=False),
    props=st.sampled_from([SPY, GOOG]),
)
def test_option_bid_ask_brackets_the_value_on_the_tick_grid(
    value: float, props: SymbolProperties
) -> None:
    bid, ask = option_bid_ask(props, value)
    assert 0.0 <= bid < ask
    assert bid <= value + 1e-9 and value - 1e-9 <= ask
    assert bid == 0.0 or on_grid(bid, option_tick(props, bid))
    assert on_grid(ask, option_tick(props, ask))
    assert ask - bid >= option_tick(props, value) - 1e-9
    widest_tick = props.option_tick_above
    assert ask - bid <= max(widest_tick, OPTION_SPREAD_FRACTION * value) + 2 * widest_tick + 1e-9


def test_option_bid_ask_golden_values() -> None:
    # 2 % of 10.00 is 0.20: 9.90 / 10.10 on SPY's penny grid.
    assert option_bid_ask(SPY, 10.0) == (9.9, 10.1)
    # GOOG above $3 uses nickels: 9.90 rounds down to 9.90, 10.10 up to 10.10.
    assert option_bid_ask(GOOG, 10.0) == (9.9, 10.1)
    assert option_bid_ask(GOOG, 10.03) == (9.9, 10.15)
    # Worth nothing: no bid, one tick offered.
    assert option_bid_ask(SPY, 0.0) == (0.0, 0.01)
    with pytest.raises(Rejected):
        option_bid_ask(SPY, -1.0)


def test_equity_bid_ask_keeps_the_mid_at_last() -> None:
    assert equity_bid_ask(SPY, 167.74) == (167.73, 167.75)  # 1 bp = 1.68 c, up to 2 c
    assert equity_bid_ask(SPY, 48.5) == (48.495, 48.505)  # one cent minimum
    bid, ask = equity_bid_ask(GOOG, 748.39)  # 7.48 c rounded up to 8 c
    assert (bid, ask) == (748.35, 748.43)


def test_daily_realised_vol_matches_statistics_stdev() -> None:
    rng = np.random.default_rng(7)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, size=40)))
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes[-21:])]
    expected = statistics.stdev(returns) * math.sqrt(252)
    assert daily_realised_vol(closes) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(Rejected) as err:
        daily_realised_vol(closes[:20])
    assert err.value.code == "unavailable"


def test_minute_realised_vol_skips_returns_across_sessions() -> None:
    closes = np.array([100.0, 101.0, 100.0, 101.0, 200.0, 202.0, 200.0] * 10)
    sessions = np.repeat(np.arange(10), 7)
    # Within each session: log(1.01), log(100/101), log(1.01)... and never 101 -> 200.
    within = []
    for s in range(10):
        c = closes[sessions == s]
        within += [math.log(b / a) for a, b in itertools.pairwise(c)]
    expected = statistics.stdev(within) * math.sqrt(252 * 390)
    assert minute_realised_vol(closes, sessions) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(Rejected) as err:
        minute_realised_vol(closes[:20], sessions[:20])
    assert err.value.code == "unavailable"


def test_option_value_is_bs_before_expiry_and_intrinsic_after() -> None:
    assert option_value(100.0, 95.0, 0.1, 0.01, 0.2, Right.CALL) == bs_price(
        100.0, 95.0, 0.1, 0.01, 0.2, Right.CALL
    )
    assert option_value(100.0, 95.0, 0.0, 0.01, 0.2, Right.CALL) == 5.0
    assert option_value(100.0, 95.0, -0.01, 0.01, 0.2, Right.PUT) == 0.0
    start = datetime(2023, 8, 3, 14, tzinfo=UTC)
    assert year_fraction(start, datetime(2024, 8, 2, 14, tzinfo=UTC)) == 1.0
