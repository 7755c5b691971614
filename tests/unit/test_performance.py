"""Performance metrics: golden values worked by hand, quantstats as an independent
reference, and properties."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.performance import (
    daily_returns,
    drawdown_series,
    max_drawdown,
    measure,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    trade_stats,
)

T0 = datetime(2024, 1, 2, 21, tzinfo=UTC)
EQUITY = [100.0, 110.0, 99.0, 120.0, 108.0, 130.0]
PNLS = [10.0, -5.0, 3.0, -2.0, 7.0, 0.0]


def days(n: int) -> list[datetime]:
    return [T0 + timedelta(days=i) for i in range(n)]


def test_golden_curve_metrics() -> None:
    # returns 1/10, -1/10, 7/33, -1/10, 11/54: mean 469/7425, sample variance
    # 1064479/44104500, downside mean square (2 × 1/100) / 5 = 1/250
    perf = measure(days(6), EQUITY, PNLS)
    mean = Fraction(469, 7425)
    assert daily_returns(EQUITY) == pytest.approx([0.1, -0.1, 7 / 33, -0.1, 11 / 54])
    assert perf.days == 5
    assert perf.start_equity == 100.0
    assert perf.end_equity == 130.0
    assert perf.total_return == pytest.approx(0.3)
    sharpe = float(mean) / math.sqrt(Fraction(1064479, 44104500)) * math.sqrt(252)
    assert sharpe == pytest.approx(6.454306089114185)
    assert perf.sharpe == pytest.approx(sharpe, rel=1e-12)
    sortino = float(mean) / math.sqrt(Fraction(1, 250)) * math.sqrt(252)
    assert sortino == pytest.approx(15.854284947251776)
    assert perf.sortino == pytest.approx(sortino, rel=1e-12)
    # 110 -> 99 and 120 -> 108 both fall 10 %: the first is the trough
    assert perf.drawdown.fraction == pytest.approx(0.1)
    assert perf.drawdown.peak_at == T0 + timedelta(days=1)
    assert perf.drawdown.trough_at == T0 + timedelta(days=2)


def test_golden_trade_metrics() -> None:
    stats = trade_stats(PNLS)
    assert (stats.trades, stats.wins, stats.losses) == (6, 3, 2)
    assert stats.win_rate == 0.5  # the break-even trade counts as a trade, not a win
    assert (stats.gross_profit, stats.gross_loss) == (20.0, 7.0)
    assert stats.profit_factor == pytest.approx(20 / 7)
    assert stats.average_win == pytest.approx(20 / 3)
    assert stats.average_loss == -3.5
    assert stats.expectancy == pytest.approx(13 / 6)
    loss_rate = stats.losses / stats.trades
    assert stats.expectancy == pytest.approx(0.5 * 20 / 3 + loss_rate * -3.5)


def test_the_peak_is_the_last_point_at_the_running_maximum() -> None:
    dd = max_drawdown(days(5), [100.0, 120.0, 110.0, 120.0, 90.0])
    assert dd.fraction == pytest.approx(0.25)
    assert (dd.peak_at, dd.trough_at) == (T0 + timedelta(days=3), T0 + timedelta(days=4))
    assert drawdown_series([100.0, 120.0, 90.0]) == pytest.approx([0.0, 0.0, 0.25])


def test_no_trades() -> None:
    stats = measure(days(3), [100.0, 101.0, 100.5], []).trades
    assert stats.trades == 0
    assert stats.win_rate is None
    assert stats.profit_factor is None
    assert stats.average_win is None and stats.average_loss is None
    assert stats.expectancy is None


def test_profit_factor_without_losses_is_infinite_and_without_either_is_none() -> None:
    assert trade_stats([5.0, 1.0]).profit_factor == math.inf
    assert trade_stats([0.0, 0.0]).profit_factor is None
    assert trade_stats([0.0, 0.0]).win_rate == 0.0
    assert trade_stats([-5.0]).profit_factor == 0.0


def test_flat_curve_has_no_sharpe_nor_sortino_and_no_drawdown() -> None:
    perf = measure(days(4), [100.0] * 4, [])
    assert perf.total_return == 0.0
    assert perf.sharpe is None
    assert perf.sortino is None
    assert perf.drawdown.fraction == 0.0
    assert perf.drawdown.peak_at is None and perf.drawdown.trough_at is None


def test_one_day() -> None:
    # the start and one session close: one return, no sample standard deviation
    up = measure(days(2), [100.0, 102.0], [2.0])
    assert up.total_return == pytest.approx(0.02)
    assert up.sharpe is None
    assert up.sortino is None  # no losing day
    down = measure(days(2), [100.0, 95.0], [-5.0])
    assert down.sharpe is None
    assert down.sortino == pytest.approx(-math.sqrt(252))  # mean / |mean|
    assert down.drawdown.fraction == pytest.approx(0.05)


def test_a_single_point_and_an_empty_curve() -> None:
    single = measure(days(1), [100.0], [])
    assert (single.days, single.total_return, single.sharpe, single.sortino) == (0, 0.0, None, None)
    empty = measure([], [], [])
    assert (empty.days, empty.start_equity, empty.total_return) == (0, None, None)
    assert empty.drawdown.fraction == 0.0


def test_a_curve_that_loses_all_its_capital_has_no_ratios() -> None:
    equity = [100.0, 0.0, 10.0, 20.0]
    assert sharpe_ratio(equity) is None
    assert sortino_ratio(equity) is None
    assert total_return(equity) == pytest.approx(-0.8)
    assert max_drawdown(days(4), equity).fraction == 1.0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="3 timestamps for 2"):
        max_drawdown(days(3), [1.0, 2.0])


def test_against_quantstats() -> None:
    import pandas as pd
    import quantstats as qs

    rng = np.random.default_rng(7)
    equity = 10_000.0 * np.cumprod(1.0 + rng.normal(0.0005, 0.012, 120))
    index = pd.date_range("2024-01-02", periods=equity.size, freq="B")
    prices = pd.Series(equity, index=index)
    returns = prices.pct_change().dropna()
    perf = measure(list(index.to_pydatetime()), equity, [])
    assert perf.sharpe == pytest.approx(qs.stats.sharpe(returns, rf=0.0, periods=252))
    assert perf.sortino == pytest.approx(qs.stats.sortino(returns, rf=0.0, periods=252))
    assert perf.total_return == pytest.approx(qs.stats.comp(returns))
    assert -perf.drawdown.fraction == pytest.approx(qs.stats.max_drawdown(prices))
    pnls = rng.normal(3.0, 40.0, 80)
    stats = trade_stats(list(pnls))
    assert stats.win_rate == pytest.approx(qs.stats.win_rate(pd.Series(pnls)))
    assert stats.profit_factor == pytest.approx(
        qs.stats.profit_factor(pd.Series(pnls))  # type: ignore[no-untyped-call]
    )


positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
pnl = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-6, max_value=1e6),
    st.floats(min_value=-1e6, max_value=-1e-6),
)


@given(st.lists(positive, min_size=1, max_size=60))
def test_max_drawdown_is_a_fraction_of_the_peak(equity: list[float]) -> None:
    dd = max_drawdown(days(len(equity)), equity)
    assert 0.0 <= dd.fraction <= 1.0
    assert (dd.peak_at is None) == (dd.fraction == 0.0)
    if dd.peak_at is not None and dd.trough_at is not None:
        assert dd.peak_at < dd.trough_at


@given(positive, st.lists(st.floats(min_value=0.0, max_value=1e6), max_size=60))
def test_a_rising_curve_has_no_drawdown(start: float, steps: list[float]) -> None:
    equity = list(np.cumsum([start, *steps]))
    dd = max_drawdown(days(len(equity)), equity)
    assert dd.fraction == 0.0
    assert dd.peak_at is None and dd.trough_at is None


@given(st.lists(pnl, max_size=40), st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_the_pnls_keeps_win_rate_and_profit_factor(pnls: list[float], c: float) -> None:
    before, after = trade_stats(pnls), trade_stats([c * p for p in pnls])
    assert after.win_rate == before.win_rate
    if before.profit_factor is None or math.isinf(before.profit_factor):
        assert after.profit_factor == before.profit_factor
    else:
        assert after.profit_factor == pytest.approx(before.profit_factor, rel=1e-9)
