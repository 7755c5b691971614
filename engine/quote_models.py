"""Models for prices nobody recorded: spreads around a price, realised volatility, option value.

Used by the replay market data (docs/market-data.md describes the whole scheme):

- Equity bid/ask around a last price: spread = max(one tick, `EQUITY_SPREAD_FRACTION` x
  last rounded up to the tick), split evenly, so the mid equals the last price.
- Option bid/ask around a theoretical value: half-spread = max(one tick,
  `OPTION_SPREAD_FRACTION` x value) / 2; the bid is rounded down and the ask up to the
  option tick at their own prices (`engine.symbols.round_order_price`); a bid that would
  be <= 0 is 0 (no bid). So bid <= value <= ask and ask - bid >= one tick.
- Realised volatility: annualised sample standard deviation (ddof = 1) of log returns,
  from daily closes (`daily_realised_vol`) or from minute closes within one session
  (`minute_realised_vol`).
- Option value: Black–Scholes–Merton (`engine.pricing.bs_price`); at or after expiry,
  intrinsic value.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from engine.errors import Rejected
from engine.marketdata import Right
from engine.pricing import bs_price
from engine.symbols import (
    SymbolProperties,
    equity_tick,
    option_tick,
    round_order_price,
    round_price,
)

EQUITY_SPREAD_FRACTION = 0.0001  # 1 basis point of the price
OPTION_SPREAD_FRACTION = 0.02  # 2 % of the option's value
DAILY_VOL_RETURNS = 20
TRADING_DAYS_PER_YEAR = 252
MINUTES_PER_SESSION = 390
MINUTE_VOL_MAX_RETURNS = 390
MINUTE_VOL_MIN_RETURNS = 30
YEAR = timedelta(days=365)
UNAVAILABLE = "unavailable"
# Prices are rounded to this many decimals so that half-cent mids print exactly.
_PRICE_DECIMALS = 6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def equity_bid_ask(props: SymbolProperties, last: float) -> tuple[float, float]:
    """(bid, ask) around a last trade price: a symmetric spread of at least one tick."""
    tick = equity_tick(props, last)
    spread = max(tick, round_price(EQUITY_SPREAD_FRACTION * last, tick, "sell"))
    half = spread / 2.0
    return round(last - half, _PRICE_DECIMALS), round(last + half, _PRICE_DECIMALS)


def option_bid_ask(props: SymbolProperties, value: float) -> tuple[float, float]:
    """(bid, ask) on the option tick grid around a theoretical `value` (>= 0)."""
    if not (math.isfinite(value) and value >= 0.0):
        raise Rejected("invalid_option_value", f"value must be finite and >= 0, got {value!r}")
    tick = option_tick(props, value)
    half = max(tick, OPTION_SPREAD_FRACTION * value) / 2.0
    low = value - half
    bid = round_order_price(props, low, "buy", is_option=True) if low > 0.0 else 0.0
    ask = round_order_price(props, value + half, "sell", is_option=True)
    return bid, ask


def daily_realised_vol(closes: FloatArray) -> float:
    """Annualised vol of the last `DAILY_VOL_RETURNS` daily log returns of `closes`.

    Needs at least `DAILY_VOL_RETURNS + 1` closes (oldest first); annualised with
    sqrt(`TRADING_DAYS_PER_YEAR`). Raises `Rejected("unavailable")` with fewer.
    """
    need = DAILY_VOL_RETURNS + 1
    if len(closes) < need:
        raise Rejected(UNAVAILABLE, f"daily volatility needs {need} closes, got {len(closes)}")
    returns = np.diff(np.log(closes[-need:]))
    return float(np.std(returns, ddof=1)) * math.sqrt(TRADING_DAYS_PER_YEAR)


def minute_realised_vol(closes: FloatArray, sessions: IntArray) -> float:
    """Annualised vol of minute log returns, never across two sessions.

    `closes` are regular-hours minute closes (oldest first) and `sessions` their session
    labels: a return is taken between neighbours of the same session only. The last
    `MINUTE_VOL_MAX_RETURNS` such returns are used, at least `MINUTE_VOL_MIN_RETURNS`
    (else `Rejected("unavailable")`); annualised with sqrt(252 x 390).
    """
    returns = np.diff(np.log(closes))[sessions[1:] == sessions[:-1]][-MINUTE_VOL_MAX_RETURNS:]
    if len(returns) < MINUTE_VOL_MIN_RETURNS:
        raise Rejected(
            UNAVAILABLE,
            f"minute volatility needs {MINUTE_VOL_MIN_RETURNS} returns, got {len(returns)}",
        )
    annual = math.sqrt(TRADING_DAYS_PER_YEAR * MINUTES_PER_SESSION)
    return float(np.std(returns, ddof=1)) * annual


def year_fraction(start: datetime, end: datetime) -> float:
    """Calendar time from `start` to `end` in years of 365 days (negative if end is earlier)."""
    return (end - start) / YEAR


def option_value(  # noqa: PLR0917 (the argument order of `bs_price`)
    spot: float, strike: float, t_years: float, rate: float, vol: float, right: Right
) -> float:
    """Black–Scholes–Merton value without dividends; intrinsic value when `t_years <= 0`."""
    if t_years <= 0.0:
        payoff = spot - strike if right is Right.CALL else strike - spot
        return max(payoff, 0.0)
    return bs_price(spot, strike, t_years, rate, vol, right)
