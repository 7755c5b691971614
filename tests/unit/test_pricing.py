"""Black–Scholes–Merton prices, greeks and implied vol.

References: an independent implementation on `scipy.stats.norm`, Hull's textbook
examples, finite differences for the greeks, and no-arbitrage properties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Case:
    """One option's market inputs other than the right: S, K, T, r, sigma, q."""

    s: float
    k: float
    t: float
    r: float
    v: float
    q: float

    def price(self, right: Right, **bump: float) -> float:
        c = replace(self, **bump)
        return bs_price(c.s, c.k, c.t, c.r, c.v, right, c.q)

    def bounds(self, right: Right) -> tuple[float, float]:
        return no_arbitrage_bounds(self.s, self.k, self.t, self.r, right, self.q)


def reference_price(c: Case, right: Right) -> float:
    """Black–Scholes–Merton written out on scipy's normal distribution."""
    d1 = (math.log(c.s / c.k) + (c.r - c.q + c.v * c.v / 2) * c.t) / (c.v * math.sqrt(c.t))
    d2 = d1 - c.v * math.sqrt(c.t)
    fwd_spot, pv_strike = c.s * math.exp(-c.q * c.t), c.k * math.exp(-c.r * c.t)
    if right is Right.CALL:
        return float(fwd_spot * norm.cdf(d1) - pv_strike * norm.cdf(d2))
    return float(pv_strike * norm.cdf(-d2) - fwd_spot * norm.cdf(-d1))


def cases(
    times: tuple[float, float] = (1 / 365, 3.0), vols: tuple[float, float] = (0.05, 2.0)
) -> st.SearchStrategy[Case]:
    """Spot 1..1000, strike 0.5..2 x spot, rate -1..10 %, dividend 0..5 %."""
    return st.builds(
        lambda s, m, t, r, v, q: Case(s, s * m, t, r, v, q),
        st.floats(1.0, 1000.0),
        st.floats(0.5, 2.0),
        st.floats(*times),
        st.floats(-0.01, 0.10),
        st.floats(*vols),
        st.floats(0.0, 0.05),
    )


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


@given(cases(), rights)
def test_matches_scipy_reference(c: Case, right: Right) -> None:
    assert math.isclose(c.price(right), reference_price(c, right), rel_tol=1e-9, abs_tol=1e-9)


# --- greeks against finite differences -----------------------------------------------


@given(cases(times=(0.05, 3.0), vols=(0.1, 1.0)), rights)
def test_greeks_match_finite_differences(c: Case, right: Right) -> None:
    g = bs_greeks(c.s, c.k, c.t, c.r, c.v, right, c.q)
    hs, h = 1e-4 * c.s, 1e-5
    delta = (c.price(right, s=c.s + hs) - c.price(right, s=c.s - hs)) / (2 * hs)
    gamma = (
        bs_greeks(c.s + hs, c.k, c.t, c.r, c.v, right, c.q).delta
        - bs_greeks(c.s - hs, c.k, c.t, c.r, c.v, right, c.q).delta
    ) / (2 * hs)
    vega = (c.price(right, v=c.v + h) - c.price(right, v=c.v - h)) / (2 * h)
    theta = -(c.price(right, t=c.t + h) - c.price(right, t=c.t - h)) / (2 * h)
    rho = (c.price(right, r=c.r + h) - c.price(right, r=c.r - h)) / (2 * h)
    assert math.isclose(g.delta, delta, abs_tol=1e-6)
    assert math.isclose(g.gamma, gamma, rel_tol=1e-4, abs_tol=1e-6 / c.s)
    assert math.isclose(g.vega, vega, rel_tol=1e-6, abs_tol=1e-6 * c.s)
    assert math.isclose(g.theta, theta, rel_tol=1e-5, abs_tol=1e-5 * c.s)
    assert math.isclose(g.rho, rho, rel_tol=1e-6, abs_tol=1e-6 * c.s)


# --- no-arbitrage properties --------------------------------------------------------------


@given(cases())
def test_put_call_parity(c: Case) -> None:
    forward_gap = c.s * math.exp(-c.q * c.t) - c.k * math.exp(-c.r * c.t)
    assert abs((c.price(Right.CALL) - c.price(Right.PUT)) - forward_gap) <= 1e-9 * max(c.s, c.k)


@given(cases(), st.floats(1e-3, 0.5))
def test_monotone_in_spot_strike_and_vol(c: Case, bump: float) -> None:
    tol = 1e-12 * max(c.s, c.k)
    call, put = c.price(Right.CALL), c.price(Right.PUT)
    up = 1.0 + bump
    assert c.price(Right.CALL, s=c.s * up) >= call - tol
    assert c.price(Right.PUT, s=c.s * up) <= put + tol
    assert c.price(Right.CALL, k=c.k * up) <= call + tol
    assert c.price(Right.PUT, k=c.k * up) >= put - tol
    assert c.price(Right.CALL, v=c.v * up) >= call - tol
    assert c.price(Right.PUT, v=c.v * up) >= put - tol


@given(cases())
def test_prices_within_no_arbitrage_bounds(c: Case) -> None:
    tol = 1e-12 * max(c.s, c.k)
    call, put = c.price(Right.CALL), c.price(Right.PUT)
    assert 0.0 <= call <= c.s * math.exp(-c.q * c.t)
    assert 0.0 <= put <= c.k * math.exp(-c.r * c.t)
    for right, px in ((Right.CALL, call), (Right.PUT, put)):
        lower, upper = c.bounds(right)
        assert lower - tol <= px <= upper + tol


# --- implied vol -------------------------------------------------------------------------


@given(cases(vols=(0.01, 3.0)), rights)
def test_implied_vol_round_trips_the_price(c: Case, right: Right) -> None:
    price = c.price(right)
    lower, upper = c.bounds(right)
    # A price within float noise of a bound carries no information about vol.
    noise = 1e-9 * max(c.s, c.k)
    assume(price - lower > noise and upper - price > noise)
    iv = implied_vol(price, c.s, c.k, c.t, c.r, right, c.q)
    assert math.isclose(c.price(right, v=iv), price, rel_tol=1e-10, abs_tol=1e-12 * c.s)
    vega = bs_greeks(c.s, c.k, c.t, c.r, c.v, right, c.q).vega
    if vega > 1e-3 * c.s:  # vol is well determined by the price
        assert math.isclose(iv, c.v, rel_tol=1e-7)


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


@given(st.lists(st.tuples(cases(), rights), min_size=1))
def test_array_version_matches_scalar(rows: list[tuple[Case, Right]]) -> None:
    def column(name: str) -> np.ndarray:
        return np.array([getattr(c, name) for c, _ in rows])

    calls = np.array([right is Right.CALL for _, right in rows])
    got = bs_price_array(
        column("s"), column("k"), column("t"), column("r"), column("v"), calls, column("q")
    )
    for i, (c, right) in enumerate(rows):
        assert math.isclose(float(got[i]), c.price(right), rel_tol=1e-9, abs_tol=1e-9)


def test_array_version_broadcasts_and_validates() -> None:
    strikes = np.array([90.0, 100.0, 110.0])
    got = bs_price_array(100.0, strikes, 0.5, 0.01, 0.25, True)
    assert got.shape == (3,)
    assert got[0] > got[1] > got[2]
    with pytest.raises(Rejected) as info:
        bs_price_array(100.0, strikes, np.array([0.5, 0.0, 0.5]), 0.01, 0.25, True)
    assert info.value.code == "invalid_pricing_input"
    assert "t_years" in str(info.value.detail)
