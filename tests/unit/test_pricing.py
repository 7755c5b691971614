"""Black–Scholes–Merton prices, greeks and implied vol.

References: an independent implementation on `scipy.stats.norm`, Hull's textbook
examples, finite differences for the greeks, and no-arbitrage properties.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.stats import norm

from engine.errors import Rejected
from engine.marketdata import Right
from engine.pricing import (
    MAX_IMPLIED_VOL,
    Greeks,
    bs_greeks,
    bs_price,
    bs_price_array,
    implied_vol,
    no_arbitrage_bounds,
)


def reference_price(
    s: float, k: float, t: float, r: float, v: float, right: Right, q: float = 0.0
) -> float:
    d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    if right is Right.CALL:
        return float(s * math.exp(-q * t) * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d2))
    return float(k * math.exp(-r * t) * norm.cdf(-d2) - s * math.exp(-q * t) * norm.cdf(-d1))


spots = st.floats(1.0, 1000.0)
moneyness = st.floats(0.5, 2.0)
times = st.floats(1 / 365, 3.0)
rates = st.floats(-0.01, 0.10)
vols = st.floats(0.05, 2.0)
dividends = st.floats(0.0, 0.05)
rights = st.sampled_from([Right.CALL, Right.PUT])


# --- golden values -------------------------------------------------------------------


def test_hull_example_call_and_put() -> None:
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10%, sigma=20%, T=0.5.
    call = bs_price(42.0, 40.0, 0.5, 0.1, 0.2, Right.CALL)
    put = bs_price(42.0, 40.0, 0.5, 0.1, 0.2, Right.PUT)
    assert round(call, 2) == 4.76
    assert round(put, 2) == 0.81


def test_hull_greeks_example() -> None:
    # Hull's running greeks example: S=49, K=50, r=5%, sigma=20%, T=20 weeks (0.3846 y).
    g = bs_greeks(49.0, 50.0, 0.3846, 0.05, 0.2, Right.CALL)
    assert round(g.delta, 3) == 0.522
    assert round(g.gamma, 3) == 0.066
    assert round(g.vega, 1) == 12.1
    assert round(g.theta, 2) == -4.31
    assert round(g.rho, 2) == 8.91


def test_greeks_is_frozen() -> None:
    g = bs_greeks(100.0, 100.0, 1.0, 0.0, 0.2, Right.PUT)
    assert isinstance(g, Greeks)
    with pytest.raises(AttributeError):
        g.delta = 0.0  # type: ignore[misc]


# --- independent implementation --------------------------------------------------------


@given(spots, moneyness, times, rates, vols, rights, dividends)
def test_matches_scipy_reference(
    s: float, m: float, t: float, r: float, v: float, right: Right, q: float
) -> None:
    k = s * m
    ours = bs_price(s, k, t, r, v, right, q)
    assert math.isclose(ours, reference_price(s, k, t, r, v, right, q), rel_tol=1e-9, abs_tol=1e-9)


# --- greeks against finite differences -----------------------------------------------


@given(spots, moneyness, st.floats(0.05, 3.0), rates, st.floats(0.1, 1.0), rights, dividends)
def test_greeks_match_finite_differences(
    s: float, m: float, t: float, r: float, v: float, right: Right, q: float
) -> None:
    k = s * m
    g = bs_greeks(s, k, t, r, v, right, q)

    def px(s_: float = s, t_: float = t, r_: float = r, v_: float = v) -> float:
        return bs_price(s_, k, t_, r_, v_, right, q)

    hs, h = 1e-4 * s, 1e-5
    delta = (px(s_=s + hs) - px(s_=s - hs)) / (2 * hs)
    gamma = (
        bs_greeks(s + hs, k, t, r, v, right, q).delta
        - bs_greeks(s - hs, k, t, r, v, right, q).delta
    ) / (2 * hs)
    vega = (px(v_=v + h) - px(v_=v - h)) / (2 * h)
    theta = -(px(t_=t + h) - px(t_=t - h)) / (2 * h)
    rho = (px(r_=r + h) - px(r_=r - h)) / (2 * h)
    assert math.isclose(g.delta, delta, abs_tol=1e-6)
    assert math.isclose(g.gamma, gamma, rel_tol=1e-4, abs_tol=1e-6 / s)
    assert math.isclose(g.vega, vega, rel_tol=1e-6, abs_tol=1e-6 * s)
    assert math.isclose(g.theta, theta, rel_tol=1e-5, abs_tol=1e-5 * s)
    assert math.isclose(g.rho, rho, rel_tol=1e-6, abs_tol=1e-6 * s)


# --- no-arbitrage properties --------------------------------------------------------------


@given(spots, moneyness, times, rates, vols, dividends)
def test_put_call_parity(s: float, m: float, t: float, r: float, v: float, q: float) -> None:
    k = s * m
    call = bs_price(s, k, t, r, v, Right.CALL, q)
    put = bs_price(s, k, t, r, v, Right.PUT, q)
    forward_gap = s * math.exp(-q * t) - k * math.exp(-r * t)
    assert abs((call - put) - forward_gap) <= 1e-9 * max(s, k)


@given(spots, moneyness, times, rates, vols, dividends, st.floats(1e-3, 0.5))
def test_monotone_in_spot_strike_and_vol(
    s: float, m: float, t: float, r: float, v: float, q: float, bump: float
) -> None:
    k = s * m
    tol = 1e-12 * max(s, k)
    call = bs_price(s, k, t, r, v, Right.CALL, q)
    put = bs_price(s, k, t, r, v, Right.PUT, q)
    up = 1.0 + bump
    assert bs_price(s * up, k, t, r, v, Right.CALL, q) >= call - tol
    assert bs_price(s * up, k, t, r, v, Right.PUT, q) <= put + tol
    assert bs_price(s, k * up, t, r, v, Right.CALL, q) <= call + tol
    assert bs_price(s, k * up, t, r, v, Right.PUT, q) >= put - tol
    assert bs_price(s, k, t, r, v * up, Right.CALL, q) >= call - tol
    assert bs_price(s, k, t, r, v * up, Right.PUT, q) >= put - tol


@given(spots, moneyness, times, rates, vols, dividends)
def test_prices_within_no_arbitrage_bounds(
    s: float, m: float, t: float, r: float, v: float, q: float
) -> None:
    k = s * m
    tol = 1e-12 * max(s, k)
    call = bs_price(s, k, t, r, v, Right.CALL, q)
    put = bs_price(s, k, t, r, v, Right.PUT, q)
    assert 0.0 <= call <= s * math.exp(-q * t)
    assert 0.0 <= put <= k * math.exp(-r * t)
    for right, px in ((Right.CALL, call), (Right.PUT, put)):
        lower, upper = no_arbitrage_bounds(s, k, t, r, right, q)
        assert lower - tol <= px <= upper + tol


# --- implied vol -------------------------------------------------------------------------


@given(spots, moneyness, times, rates, st.floats(0.01, 3.0), rights, dividends)
def test_implied_vol_round_trips_the_price(
    s: float, m: float, t: float, r: float, v: float, right: Right, q: float
) -> None:
    k = s * m
    price = bs_price(s, k, t, r, v, right, q)
    lower, upper = no_arbitrage_bounds(s, k, t, r, right, q)
    # A price within float noise of a bound carries no information about vol.
    assume(price - lower > 1e-9 * max(s, k) and upper - price > 1e-9 * max(s, k))
    iv = implied_vol(price, s, k, t, r, right, q)
    assert math.isclose(bs_price(s, k, t, r, iv, right, q), price, rel_tol=1e-10, abs_tol=1e-12 * s)
    vega = bs_greeks(s, k, t, r, v, right, q).vega
    if vega > 1e-3 * s:  # vol is well determined by the price
        assert math.isclose(iv, v, rel_tol=1e-7)


def test_implied_vol_golden() -> None:
    assert math.isclose(implied_vol(4.759422392871535, 42, 40, 0.5, 0.1, Right.CALL), 0.2)
    # Hull: a call at S=21, K=20, r=10%, T=0.25 priced 1.875 has an implied vol of 23.5%.
    assert round(implied_vol(1.875, 21.0, 20.0, 0.25, 0.1, Right.CALL), 3) == 0.235


def test_implied_vol_handles_extreme_but_valid_prices() -> None:
    # Deep out of the money, far in the money, and a very high vol.
    for v in (0.01, 0.5, 5.0, 50.0):
        for k in (20.0, 100.0, 400.0):
            for right in (Right.CALL, Right.PUT):
                price = bs_price(100.0, k, 0.25, 0.03, v, right)
                lower, upper = no_arbitrage_bounds(100.0, k, 0.25, 0.03, right)
                if not lower + 1e-9 < price < upper - 1e-9:
                    continue
                iv = implied_vol(price, 100.0, k, 0.25, 0.03, right)
                assert math.isclose(bs_price(100.0, k, 0.25, 0.03, iv, right), price, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("price", "right"),
    [
        (1.99, Right.CALL),  # below intrinsic: S - K e^{-rT} is about 2.0 here
        (-0.5, Right.PUT),
        (0.0, Right.PUT),
        (102.0, Right.CALL),  # above the spot
        (100.0, Right.CALL),  # exactly the upper bound
        (101.0, Right.PUT),  # above the discounted strike
    ],
)
def test_implied_vol_refuses_prices_outside_bounds(price: float, right: Right) -> None:
    with pytest.raises(Rejected) as info:
        implied_vol(price, 100.0, 98.0, 0.01, 0.0, right)
    assert info.value.code == "no_implied_vol"


def test_implied_vol_refuses_prices_needing_absurd_vol() -> None:
    # An hour to expiry: even a 10,000 % vol prices this call well below the spot.
    t = 1 / (365 * 24)
    top = bs_price(100.0, 100.0, t, 0.0, MAX_IMPLIED_VOL, Right.CALL)
    price = (top + 100.0) / 2
    assert top < price < 100.0  # inside the bounds, yet beyond any vol we search
    with pytest.raises(Rejected) as info:
        implied_vol(price, 100.0, 100.0, t, 0.0, Right.CALL)
    assert info.value.code == "no_implied_vol"


# --- input errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"t_years": 0.0}, "t_years"),
        ({"t_years": -0.1}, "t_years"),
        ({"vol": 0.0}, "vol"),
        ({"vol": -0.2}, "vol"),
        ({"spot": 0.0}, "spot"),
        ({"spot": -1.0}, "spot"),
        ({"strike": 0.0}, "strike"),
        ({"strike": math.nan}, "strike"),
        ({"rate": math.inf}, "rate"),
        ({"dividend": math.nan}, "dividend"),
        ({"right": "straddle"}, "right"),
    ],
)
def test_impossible_inputs_are_rejected_naming_the_input(
    kwargs: dict[str, object], name: str
) -> None:
    args: dict[str, object] = {
        "spot": 100.0,
        "strike": 100.0,
        "t_years": 1.0,
        "rate": 0.01,
        "vol": 0.2,
        "right": Right.CALL,
    }
    args.update(kwargs)
    for fn in (bs_price, bs_greeks):
        with pytest.raises(Rejected) as info:
            fn(**args)  # type: ignore[arg-type]
        assert info.value.code == "invalid_pricing_input"
        assert name in str(info.value.detail)


def test_implied_vol_rejects_bad_market_inputs_before_bounds() -> None:
    with pytest.raises(Rejected) as info:
        implied_vol(5.0, 100.0, 100.0, 0.0, 0.01, Right.CALL)
    assert info.value.code == "invalid_pricing_input"
    assert "t_years" in str(info.value.detail)
    with pytest.raises(Rejected) as info:
        implied_vol(math.nan, 100.0, 100.0, 1.0, 0.01, Right.CALL)
    assert "price" in str(info.value.detail)


def test_rights_given_as_plain_strings_work() -> None:
    as_enum = bs_price(100.0, 95.0, 0.5, 0.02, 0.3, Right.PUT)
    assert bs_price(100.0, 95.0, 0.5, 0.02, 0.3, "put") == as_enum  # type: ignore[arg-type]


# --- vectorised version ---------------------------------------------------------------------


@given(
    st.lists(st.tuples(spots, moneyness, times, rates, vols, st.booleans(), dividends), min_size=1)
)
def test_array_version_matches_scalar(
    rows: list[tuple[float, float, float, float, float, bool, float]],
) -> None:
    s, m, t, r, v, call, q = (np.array(col) for col in zip(*rows, strict=True))
    got = bs_price_array(s, s * m, t, r, v, call, q)
    for i, row in enumerate(rows):
        right = Right.CALL if row[5] else Right.PUT
        want = bs_price(row[0], row[0] * row[1], row[2], row[3], row[4], right, row[6])
        assert math.isclose(float(got[i]), want, rel_tol=1e-9, abs_tol=1e-9)


def test_array_version_broadcasts_and_validates() -> None:
    strikes = np.array([90.0, 100.0, 110.0])
    got = bs_price_array(100.0, strikes, 0.5, 0.01, 0.25, True)
    assert got.shape == (3,)
    assert got[0] > got[1] > got[2]
    with pytest.raises(Rejected) as info:
        bs_price_array(100.0, strikes, np.array([0.5, 0.0, 0.5]), 0.01, 0.25, True)
    assert info.value.code == "invalid_pricing_input"
    assert "t_years" in str(info.value.detail)
