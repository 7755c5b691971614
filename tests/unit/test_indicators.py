"""engine.indicators against TA-Lib (real SPY minute bars, long series that cross chunk
boundaries, hypothesis-generated series), hand-checked values, incremental == batch, and
input errors."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from engine import indicators as ind

FloatArray = npt.NDArray[np.float64]
Bars = tuple[FloatArray, FloatArray, FloatArray]

ROOT = Path(__file__).resolve().parents[2]
DATA_CANDIDATES = (
    ROOT / "data" / "bars_1m.parquet",
    ROOT.parent / "shared" / "data" / "bars_1m.parquet",
)
TOL = 1e-9
SET_FIELDS = tuple(field.name for field in dataclasses.fields(ind.IndicatorArrays))


def assert_matches(actual: npt.ArrayLike, expected: npt.ArrayLike, scale: float) -> None:
    """NaN in exactly the same places (the warm-up); elsewhere |actual − expected| <=
    TOL × max(|expected|, scale), i.e. relative, or absolute in units of `scale` (the
    price level) for values near zero."""
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert a.shape == e.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg="warm-up NaNs differ")
    ok = ~np.isnan(e)
    err = np.abs(a[ok] - e[ok])
    bound = TOL * np.maximum(np.abs(e[ok]), scale)
    worst = int(np.argmax(err / bound)) if err.size else 0
    assert np.all(err <= bound), f"error {err[worst]:.3e} > bound {bound[worst]:.3e}"


def scale_of(close: FloatArray) -> float:
    return float(np.median(close)) if close.size else 1.0


@pytest.fixture(scope="module")
def spy() -> Bars:
    """Real SPY minute bars (2013-10 and 2023-08 sessions, extended hours kept)."""
    path = next((p for p in DATA_CANDIDATES if p.exists()), None)
    if path is None:
        pytest.skip("bars_1m.parquet not found in data/ or ../shared/data/")
    bars = pl.read_parquet(path).filter(pl.col("symbol") == "SPY").sort("ts")
    assert bars.height > 5000
    high, low, close = (bars[c].to_numpy().astype(np.float64) for c in ("high", "low", "close"))
    return high, low, close


def random_walk(size: int, seed: int) -> Bars:
    """A seeded random walk of minute-like bars on a cent grid."""
    rng = np.random.default_rng(seed)
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, size))), 2)
    high = close + np.round(np.abs(rng.normal(0.0, 0.03, size)), 2)
    low = close - np.round(np.abs(rng.normal(0.0, 0.03, size)), 2)
    return high, low, close


@st.composite
def bar_series(draw: st.DrawFn, max_size: int = 300) -> Bars:
    """Positive OHLC series on a cent grid: a seeded random walk whose length, start
    price, volatility and share of unchanged closes (flat stretches) hypothesis picks."""
    size = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    start = draw(st.floats(1.0, 500.0))
    vol = draw(st.sampled_from([0.0, 5e-4, 2e-3, 1e-2, 5e-2]))
    flat = draw(st.sampled_from([0.0, 0.5, 0.95]))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, vol, size) * (rng.random(size) >= flat)
    close = np.maximum(np.round(start * np.exp(np.cumsum(steps)), 2), 0.01)
    spread = np.round(close * rng.uniform(0.0, 2 * vol + 1e-4, (2, size)), 2)
    return close + spread[0], np.maximum(close - spread[1], 0.01), close


def talib_squeeze(
    high: FloatArray, low: FloatArray, close: FloatArray
) -> dict[str, npt.NDArray[Any]]:
    """Golden Keltner/TTM values built from TA-Lib pieces."""
    bb_upper, bb_middle, bb_lower = talib.BBANDS(close, 20, 2.0, 2.0)  # matype 0 (SMA), the default
    kc_middle = talib.EMA(close, 20)
    kc_width = 1.5 * talib.ATR(high, low, close, 20)
    kc_upper, kc_lower = kc_middle + kc_width, kc_middle - kc_width
    donchian = (talib.MAX(high, 20) + talib.MIN(low, 20)) / 2.0
    delta = close - (donchian + talib.SMA(close, 20)) / 2.0
    return {
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
        "kc_upper": kc_upper,
        "kc_middle": kc_middle,
        "kc_lower": kc_lower,
        "squeeze_on": (bb_upper < kc_upper) & (bb_lower > kc_lower),
        "momentum": talib.LINEARREG(delta, 20) if close.size >= 39 else np.full(close.size, np.nan),
    }


def assert_squeeze_flags(
    actual: npt.NDArray[np.bool_], golden: dict[str, npt.NDArray[Any]]
) -> None:
    """Flags equal wherever neither band pair ties within tolerance (NaN margins, the
    warm-up, must agree too: both False)."""
    scale = float(np.nanmax(np.abs(golden["bb_middle"]), initial=1.0))
    margin = np.minimum(
        np.abs(golden["kc_upper"] - golden["bb_upper"]),
        np.abs(golden["bb_lower"] - golden["kc_lower"]),
    )
    clear = ~(margin <= 4 * TOL * scale)
    np.testing.assert_array_equal(actual[clear], golden["squeeze_on"][clear])


def check_against_talib(high: FloatArray, low: FloatArray, close: FloatArray, n: int) -> None:
    """Every TA-Lib-defined indicator of ours, period n, against TA-Lib on the same bars."""
    scale = scale_of(close)
    assert_matches(ind.ema(close, n), talib.EMA(close, n), scale)
    assert_matches(ind.sma(close, n), talib.SMA(close, n), scale)
    assert_matches(ind.atr(high, low, close, n), talib.ATR(high, low, close, n), scale)
    assert_matches(ind.true_range(high, low, close), talib.TRANGE(high, low, close), scale)
    assert_matches(ind.highest(high, n), talib.MAX(high, n), scale)
    assert_matches(ind.lowest(low, n), talib.MIN(low, n), scale)
    assert_matches(ind.linreg(close, n), talib.LINEARREG(close, n), scale)
    assert_matches(ind.stddev(close, n), talib.STDDEV(close, n, 1.0), scale)
    bands = ind.bollinger(close, n, 2.0)
    reference = talib.BBANDS(close, n, 2.0, 2.0)  # matype 0 (SMA), the default
    for ours, theirs in zip((bands.upper, bands.middle, bands.lower), reference, strict=True):
        assert_matches(ours, theirs, scale)


# ---------------------------------------------------------------- against TA-Lib


@pytest.mark.parametrize("n", [2, 8, 13, 14, 20, 21, 48, 200])
def test_matches_talib_on_spy_minute_bars(spy: Bars, n: int) -> None:
    check_against_talib(*spy, n)


def test_matches_talib_across_chunk_boundaries() -> None:
    """A series long enough to cross every internal chunk boundary (windows and the
    chunked recursive filters)."""
    high, low, close = random_walk(150_000, seed=7)
    for n in (3, 20, 200):
        check_against_talib(high, low, close, n)


@given(bar_series(), st.integers(2, 40))
def test_matches_talib_on_random_series(bars: Bars, n: int) -> None:
    check_against_talib(*bars, n)


def test_keltner_and_squeeze_match_talib_pieces_on_spy(spy: Bars) -> None:
    high, low, close = spy
    golden = talib_squeeze(high, low, close)
    scale = scale_of(close)
    kc = ind.keltner(high, low, close, 20, 1.5)
    assert_matches(kc.upper, golden["kc_upper"], scale)
    assert_matches(kc.middle, golden["kc_middle"], scale)
    assert_matches(kc.lower, golden["kc_lower"], scale)
    squeeze = ind.ttm_squeeze(high, low, close)
    assert_matches(squeeze.momentum, golden["momentum"], scale)
    assert_squeeze_flags(squeeze.on, golden)
    assert 0 < squeeze.on.sum() < close.size  # the real series has squeezes and releases


def check_set(high: FloatArray, low: FloatArray, close: FloatArray) -> None:
    result = ind.compute_indicators(high, low, close)
    golden = talib_squeeze(high, low, close)
    golden |= {f"ema{n}": talib.EMA(close, n) for n in (8, 13, 21, 48, 200)}
    golden["atr14"] = talib.ATR(high, low, close, 14)
    for name, expected in golden.items():
        if name != "squeeze_on":
            assert_matches(getattr(result, name), expected, scale_of(close))
    assert_squeeze_flags(result.squeeze_on, golden)


def test_indicator_set_matches_talib_on_spy(spy: Bars) -> None:
    check_set(*spy)


def test_indicator_set_matches_talib_across_chunk_boundaries() -> None:
    check_set(*random_walk(70_000, seed=11))


@given(bar_series())
def test_indicator_set_matches_talib_on_random_series(bars: Bars) -> None:
    check_set(*bars)


# ---------------------------------------------------------------- hand-checked values


def test_constant_series() -> None:
    """Close 100 every bar, high/low 100 ± 0.5: EMA = 100, ATR = the range, Bollinger
    collapses onto 100 inside Keltner 100 ± 1.5 (squeeze on from bar 20), momentum 0."""
    size = 60
    close = np.full(size, 100.0)
    high, low = close + 0.5, close - 0.5
    result = ind.compute_indicators(high, low, close)
    np.testing.assert_allclose(result.ema8[7:], 100.0, rtol=1e-15)
    assert np.isnan(result.ema8[:7]).all()
    np.testing.assert_allclose(result.atr14[14:], 1.0, rtol=1e-15)
    assert np.isnan(result.atr14[:14]).all()
    assert (result.bb_upper[19:] == 100.0).all() and (result.bb_lower[19:] == 100.0).all()
    assert (ind.stddev(close, 20)[19:] == 0.0).all()  # exactly 0, not rounding noise
    np.testing.assert_allclose(result.kc_upper[20:], 101.5, rtol=1e-15)
    np.testing.assert_allclose(result.kc_lower[20:], 98.5, rtol=1e-15)
    assert not result.squeeze_on[:20].any() and result.squeeze_on[20:].all()
    np.testing.assert_allclose(result.momentum[38:], 0.0, atol=1e-12)
    assert np.isnan(result.momentum[:38]).all()


def test_zero_range_bars_are_not_a_squeeze() -> None:
    """high = low = close: both channels collapse onto the price, so Bollinger is never
    strictly inside Keltner and the squeeze stays off; equal bands are not a squeeze."""
    close = np.full(40, 50.0)
    result = ind.compute_indicators(close, close, close)
    np.testing.assert_allclose(result.kc_upper[20:], result.bb_upper[20:], rtol=1e-15)
    assert not result.squeeze_on.any()
    assert not ind.ttm_squeeze(close, close, close).on.any()
    live = ind.IndicatorSet()
    assert not any(live.update(50.0, 50.0, 50.0).squeeze_on for _ in range(40))
    line = np.array([1.0, 2.0])
    same = ind.Bands(upper=line + 1, middle=line, lower=line - 1)
    wider = ind.Bands(upper=line + 2, middle=line, lower=line - 2)
    assert not ind.squeeze_on(same, same).any()
    assert ind.squeeze_on(same, wider).all() and not ind.squeeze_on(wider, same).any()


def test_linear_ramp() -> None:
    """On x_t = 3 + 0.5t the regression endpoint is the last value; SMA(n) and the
    SMA-seeded EMA(n) both lag by exactly 0.5 × (n − 1)/2."""
    x = 3.0 + 0.5 * np.arange(80.0)
    for n in (2, 5, 20):
        np.testing.assert_allclose(ind.linreg(x, n)[n - 1 :], x[n - 1 :], rtol=1e-13)
        lagged = x[n - 1 :] - 0.5 * (n - 1) / 2
        np.testing.assert_allclose(ind.sma(x, n)[n - 1 :], lagged, rtol=1e-13)
        np.testing.assert_allclose(ind.ema(x, n)[n - 1 :], lagged, rtol=1e-13)


def test_true_range_and_atr_by_hand() -> None:
    """Closes step up by 3, bars span close ± 1: each true range is (c + 1) − (c − 3) = 4."""
    close = 10.0 + 3.0 * np.arange(30.0)
    high, low = close + 1.0, close - 1.0
    tr = ind.true_range(high, low, close)
    assert math.isnan(tr[0]) and (tr[1:] == 4.0).all()
    atr = ind.atr(high, low, close, 5)
    assert np.isnan(atr[:5]).all()
    np.testing.assert_allclose(atr[5:], 4.0, rtol=1e-15)


def test_windows_by_hand() -> None:
    x = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    np.testing.assert_array_equal(ind.highest(x, 2), [np.nan, 3, 3, 5, 5])
    np.testing.assert_array_equal(ind.lowest(x, 2), [np.nan, 1, 2, 2, 4])
    np.testing.assert_array_equal(ind.highest(x, 3), [np.nan, np.nan, 3, 5, 5])
    np.testing.assert_array_equal(ind.sma(x, 1), x)
    np.testing.assert_array_equal(ind.linreg(x, 1), x)
    bands = ind.bollinger([1.0, 2.0, 3.0, 4.0], 4, 2.0)  # mean 2.5, variance 5/4
    assert bands.middle[3] == 2.5
    assert bands.upper[3] == pytest.approx(2.5 + 2 * math.sqrt(1.25), rel=1e-15)
    assert bands.lower[3] == pytest.approx(2.5 - 2 * math.sqrt(1.25), rel=1e-15)
    # The least-squares line through (0, 1), (1, 3), (2, 2) is 1.5 + 0.5k: 2.5 at k = 2.
    assert ind.linreg([1.0, 3.0, 2.0], 3)[2] == pytest.approx(2.5, rel=1e-15)


def test_short_and_empty_series_are_all_warm_up() -> None:
    high, low, close = random_walk(10, seed=1)
    result = ind.compute_indicators(high, low, close)
    for name in SET_FIELDS:
        values = getattr(result, name)
        assert values.shape == (10,)
        if name == "squeeze_on":
            assert not values.any()
        elif name == "ema8":  # the only one defined within 10 bars
            assert np.isnan(values[:7]).all() and not np.isnan(values[7:]).any()
        else:
            assert np.isnan(values).all(), name
    assert np.isnan(ind.ema(close, 11)).all() and np.isnan(ind.atr(high, low, close, 10)).all()
    empty = ind.compute_indicators([], [], [])
    assert all(getattr(empty, name).size == 0 for name in SET_FIELDS)


def test_inputs_are_never_modified_and_outputs_are_read_only() -> None:
    high, low, close = random_walk(500, seed=3)
    originals = [a.copy() for a in (high, low, close)]
    for a in (high, low, close):
        a.setflags(write=False)  # any write into an input would raise
    for n in (1, 2, 3, 20):
        for single in (ind.sma, ind.ema, ind.highest, ind.lowest, ind.stddev, ind.linreg):
            single(close, n)
        ind.bollinger(close, n)
        for on_bars in (ind.atr, ind.keltner, ind.ttm_squeeze, ind.squeeze_momentum):
            on_bars(high, low, close, n)
    ind.true_range(high, low, close)
    result = ind.compute_indicators(high, low, close)
    for before, after in zip(originals, (high, low, close), strict=True):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match="read-only"):
        result.ema8[0] = 1.0


# ---------------------------------------------------------------- incremental == batch


def batch_as_dict(batch: ind.IndicatorArrays) -> dict[str, npt.NDArray[Any]]:
    return {name: getattr(batch, name) for name in SET_FIELDS}


@given(bar_series())
def test_indicator_set_incremental_equals_batch(bars: Bars) -> None:
    high, low, close = bars
    batch = ind.compute_indicators(high, low, close)
    live = ind.IndicatorSet()
    snapshots = [live.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]
    for name in SET_FIELDS:
        incremental = np.array([getattr(s, name) for s in snapshots], dtype=float)
        expected = getattr(batch, name)
        if name == "squeeze_on":
            assert_squeeze_flags(incremental.astype(bool), batch_as_dict(batch))
        else:
            assert_matches(incremental, expected, scale_of(close))


@given(bar_series(max_size=120), st.integers(1, 25))
def test_small_states_equal_batch_functions(bars: Bars, n: int) -> None:
    high, low, close = bars
    ema_state, atr_state, window = ind.EmaState(n), ind.AtrState(n), ind.RollingWindow(n)
    rows = []
    for h, lo, c in zip(high, low, close, strict=True):
        window.push(c)
        stats = (window.mean(), window.pstdev(), window.linreg(), window.highest())
        rows.append((ema_state.update(c), atr_state.update(h, lo, c), *stats, window.lowest()))
    got = np.array(rows, dtype=float).reshape(close.size, 7).T
    scale = scale_of(close)
    assert_matches(got[0], ind.ema(close, n), scale)
    assert_matches(got[1], ind.atr(high, low, close, n), scale)
    assert_matches(got[2], ind.sma(close, n), scale)
    assert_matches(got[3], ind.stddev(close, n), scale)
    assert_matches(got[4], ind.linreg(close, n), scale)
    assert_matches(got[5], ind.highest(close, n), scale)
    assert_matches(got[6], ind.lowest(close, n), scale)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_bad_period_is_a_value_error(n: object) -> None:
    x = np.arange(30.0)
    for call in (
        lambda: ind.sma(x, n),  # type: ignore[arg-type]
        lambda: ind.ema(x, n),  # type: ignore[arg-type]
        lambda: ind.atr(x, x, x, n),  # type: ignore[arg-type]
        lambda: ind.linreg(x, n),  # type: ignore[arg-type]
        lambda: ind.bollinger(x, n),  # type: ignore[arg-type]
        lambda: ind.EmaState(n),  # type: ignore[arg-type]
        lambda: ind.RollingWindow(n),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="period must be an integer >= 1"):
            call()


def test_mismatched_lengths_are_a_value_error() -> None:
    x, y = np.arange(30.0), np.arange(29.0)
    for call in (
        lambda: ind.atr(x, y, x),
        lambda: ind.true_range(x, x, y),
        lambda: ind.keltner(y, x, x),
        lambda: ind.ttm_squeeze(x, x, y),
        lambda: ind.compute_indicators(x, y, x),
    ):
        with pytest.raises(ValueError, match="same length"):
            call()


def test_bad_alpha_is_a_value_error() -> None:
    for alpha in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha must be in"):
            ind.EmaState(5, alpha=alpha)


def test_non_1d_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        ind.ema(np.ones((3, 3)), 2)
