"""European option prices, greeks and implied volatility (Black–Scholes–Merton).

Conventions for every function here:

- `spot` and `strike` in price units; `t_years` is time to expiry in years (the caller
  picks the day count); `rate` is the continuously compounded risk-free rate and
  `dividend` the continuous dividend yield, both per year (0.05 = 5 %); `vol` is the
  annualised volatility per 1.00 (0.20 = 20 %).
- Impossible inputs raise `Rejected("invalid_pricing_input", detail)`, the detail naming
  the input and the reason. A price that no volatility can produce raises
  `Rejected("no_implied_vol", detail)`.

The normal CDF is computed from `math.erfc`, which keeps its relative accuracy far into
the tails, so scalar calls need nothing beyond the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import Rejected
from engine.marketdata import Right

INVALID_PRICING_INPUT = "invalid_pricing_input"
NO_IMPLIED_VOL = "no_implied_vol"

# Implied vols above this (10,000 %) are reported as not found rather than searched for.
MAX_IMPLIED_VOL = 100.0

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MAX_SOLVER_STEPS = 200
# Newton steps smaller than this fraction of the vol are below float resolution of the
# price: stop there instead of chasing rounding noise.
_STEP_RESOLUTION = 1e-14

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of one option's price.

    `delta` per 1 of spot, `gamma` per 1 of spot squared, `vega` per 1.00 of vol (divide
    by 100 for one vol point), `theta` per year of calendar time passing (negative when
    the option loses value; divide by 365 for a day), `rho` per 1.00 of rate.
    """

    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def _require_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise Rejected(INVALID_PRICING_INPUT, f"{name} must be a finite number, got {value!r}")


def _require_positive(name: str, value: float) -> None:
    _require_finite(name, value)
    if value <= 0.0:
        raise Rejected(INVALID_PRICING_INPUT, f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class _Option:
    """Validated inputs other than vol, with the discount factors worked out once."""

    spot: float
    strike: float
    t_years: float
    rate: float
    dividend: float
    call: bool

    @property
    def fwd_spot(self) -> float:
        """S e^{-qT}: spot less the dividends paid before expiry."""
        return self.spot * math.exp(-self.dividend * self.t_years)

    @property
    def pv_strike(self) -> float:
        """K e^{-rT}: the strike discounted to today."""
        return self.strike * math.exp(-self.rate * self.t_years)


def _option(
    spot: float, strike: float, t_years: float, rate: float, *, right: Right, dividend: float
) -> _Option:
    _require_positive("spot", spot)
    _require_positive("strike", strike)
    _require_positive("t_years", t_years)
    _require_finite("rate", rate)
    _require_finite("dividend", dividend)
    if right == Right.CALL:
        call = True
    elif right == Right.PUT:
        call = False
    else:
        raise Rejected(INVALID_PRICING_INPUT, f"right must be 'call' or 'put', got {right!r}")
    return _Option(spot, strike, t_years, rate, dividend, call)


def _d1_d2(opt: _Option, vol: float) -> tuple[float, float]:
    vol_sqrt_t = vol * math.sqrt(opt.t_years)
    drift = (opt.rate - opt.dividend + 0.5 * vol * vol) * opt.t_years
    d1 = (math.log(opt.spot / opt.strike) + drift) / vol_sqrt_t
    return d1, d1 - vol_sqrt_t


def _price_and_vega(opt: _Option, vol: float) -> tuple[float, float]:
    d1, d2 = _d1_d2(opt, vol)
    fwd_spot, pv_strike = opt.fwd_spot, opt.pv_strike
    if opt.call:
        price = fwd_spot * _norm_cdf(d1) - pv_strike * _norm_cdf(d2)
    else:
        price = pv_strike * _norm_cdf(-d2) - fwd_spot * _norm_cdf(-d1)
    # The difference of two rounded terms can dip a hair below zero far out of the money.
    return max(price, 0.0), fwd_spot * _norm_pdf(d1) * math.sqrt(opt.t_years)


# The public functions keep the textbook positional order (S, K, T, r, sigma, right, q)
# that callers already use, hence the positional-argument lint exceptions.


def bs_price(  # noqa: PLR0917
    spot: float,
    strike: float,
    t_years: float,
    rate: float,
    vol: float,
    right: Right,
    dividend: float = 0.0,
) -> float:
    """Black–Scholes–Merton price of a European call or put."""
    opt = _option(spot, strike, t_years, rate, right=right, dividend=dividend)
    _require_positive("vol", vol)
    return _price_and_vega(opt, vol)[0]


def bs_greeks(  # noqa: PLR0917
    spot: float,
    strike: float,
    t_years: float,
    rate: float,
    vol: float,
    right: Right,
    dividend: float = 0.0,
) -> Greeks:
    """Analytic Black–Scholes–Merton greeks (units in `Greeks`)."""
    opt = _option(spot, strike, t_years, rate, right=right, dividend=dividend)
    _require_positive("vol", vol)
    sign = 1.0 if opt.call else -1.0
    d1, d2 = _d1_d2(opt, vol)
    carry = math.exp(-dividend * t_years)
    sqrt_t = math.sqrt(t_years)
    density = _norm_pdf(d1)
    n1 = _norm_cdf(sign * d1)
    n2 = _norm_cdf(sign * d2)
    theta = (
        -spot * carry * density * vol / (2.0 * sqrt_t)
        - sign * rate * opt.pv_strike * n2
        + sign * dividend * spot * carry * n1
    )
    return Greeks(
        delta=sign * carry * n1,
        gamma=carry * density / (spot * vol * sqrt_t),
        vega=spot * carry * density * sqrt_t,
        theta=theta,
        rho=sign * t_years * opt.pv_strike * n2,
    )


def no_arbitrage_bounds(  # noqa: PLR0917
    spot: float, strike: float, t_years: float, rate: float, right: Right, dividend: float = 0.0
) -> tuple[float, float]:
    """(lower, upper) bounds of a European option's price; any vol > 0 prices strictly inside.

    Call: max(S e^{-qT} - K e^{-rT}, 0) .. S e^{-qT}.
    Put: max(K e^{-rT} - S e^{-qT}, 0) .. K e^{-rT}.
    """
    opt = _option(spot, strike, t_years, rate, right=right, dividend=dividend)
    return _bounds(opt)


def _bounds(opt: _Option) -> tuple[float, float]:
    fwd_spot, pv_strike = opt.fwd_spot, opt.pv_strike
    if opt.call:
        return max(fwd_spot - pv_strike, 0.0), fwd_spot
    return max(pv_strike - fwd_spot, 0.0), pv_strike


def implied_vol(  # noqa: PLR0917
    price: float,
    spot: float,
    strike: float,
    t_years: float,
    rate: float,
    right: Right,
    dividend: float = 0.0,
) -> float:
    """The vol at which `bs_price` returns `price`.

    Newton's method on the price, kept inside a bracket that every step shrinks, with a
    bisection step whenever Newton would leave the bracket: it always converges. Raises
    `Rejected("no_implied_vol")` when `price` is not strictly inside the no-arbitrage
    bounds or needs a vol above `MAX_IMPLIED_VOL`.
    """
    opt = _option(spot, strike, t_years, rate, right=right, dividend=dividend)
    _require_finite("price", price)
    lower, upper = _bounds(opt)
    if not lower < price < upper:
        raise Rejected(
            NO_IMPLIED_VOL,
            f"price {price!r} is outside the no-arbitrage bounds ({lower!r}, {upper!r}) "
            f"of this {right}",
        )
    if price >= _price_and_vega(opt, MAX_IMPLIED_VOL)[0]:
        raise Rejected(
            NO_IMPLIED_VOL, f"price {price!r} needs a vol above {MAX_IMPLIED_VOL!r} (10,000 %)"
        )
    return _solve_vol(opt, price, _initial_vol(opt, price))


def _initial_vol(opt: _Option, price: float) -> float:
    # Price is convex in vol below sqrt(2|ln(F/K)|/T) and concave above it, so Newton from
    # there converges monotonically (Manaster & Koehler 1982). At the money that point is 0:
    # use the Brenner–Subrahmanyam approximation instead.
    log_moneyness = math.log(opt.fwd_spot / opt.pv_strike)
    inflection = math.sqrt(2.0 * abs(log_moneyness) / opt.t_years)
    if inflection > 1e-3:
        return min(inflection, MAX_IMPLIED_VOL / 2.0)
    atm = math.sqrt(2.0 * math.pi / opt.t_years) * price / opt.fwd_spot
    return min(max(atm, 1e-3), MAX_IMPLIED_VOL / 2.0)


def _solve_vol(opt: _Option, price: float, guess: float) -> float:
    low, high, vol = 0.0, MAX_IMPLIED_VOL, guess
    for _ in range(_MAX_SOLVER_STEPS):
        model, vega = _price_and_vega(opt, vol)
        diff = model - price
        if diff == 0.0:
            return vol
        if diff > 0.0:
            high = vol
        else:
            low = vol
        step = diff / vega if vega > 0.0 else math.inf
        newton = vol - step
        if abs(step) <= _STEP_RESOLUTION * vol and low <= newton <= high:
            return newton
        vol = newton if low < newton < high else 0.5 * (low + high)
        if high - low <= _STEP_RESOLUTION * high:
            return vol
    return vol


def bs_price_array(  # noqa: PLR0917
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_years: npt.ArrayLike,
    rate: npt.ArrayLike,
    vol: npt.ArrayLike,
    is_call: npt.ArrayLike,
    dividend: npt.ArrayLike = 0.0,
) -> FloatArray:
    """Vectorised `bs_price`: arguments broadcast together; `is_call` is a bool array.

    Every element is validated like the scalar version (the detail names the input).
    Needs scipy (`scipy.special.ndtr`), imported on first use so the scalar functions
    work without it.
    """
    from scipy.special import ndtr

    s, k, t, r, v, q = (
        np.asarray(a, dtype=np.float64) for a in (spot, strike, t_years, rate, vol, dividend)
    )
    _check_array("spot", s, positive=True)
    _check_array("strike", k, positive=True)
    _check_array("t_years", t, positive=True)
    _check_array("vol", v, positive=True)
    _check_array("rate", r, positive=False)
    _check_array("dividend", q, positive=False)
    calls = np.asarray(is_call, dtype=bool)
    vol_sqrt_t = v * np.sqrt(t)
    d1 = (np.log(s / k) + (r - q + 0.5 * v * v) * t) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    fwd_spot = s * np.exp(-q * t)
    pv_strike = k * np.exp(-r * t)
    call_px: Any = fwd_spot * ndtr(d1) - pv_strike * ndtr(d2)
    put_px: Any = pv_strike * ndtr(-d2) - fwd_spot * ndtr(-d1)
    result: FloatArray = np.maximum(np.where(calls, call_px, put_px), 0.0).astype(np.float64)
    return result


def _check_array(name: str, values: FloatArray, positive: bool) -> None:
    bad = ~np.isfinite(values)
    if positive:
        bad |= values <= 0.0
    if bool(bad.any()):
        first = float(values[bad].flat[0])
        need = "finite and > 0" if positive else "finite"
        raise Rejected(INVALID_PRICING_INPUT, f"{name} must be {need}, got {first!r}")
