"""Which option an entry buys: right from direction, expiry from DTE, strike from spot.

- Right: long → call, short → put.
- Expiry: the first listed expiry at least `target_dte` calendar days after the New York
  date of `now` (0 allows an expiry today).
- Strike: the listed strike nearest spot (ties go to the higher strike, as
  `engine.symbols.nearest_strike`), moved `strike_offset_steps` listed strikes out of
  the money: up for a call, down for a put. 0 is at the money, negative in the money.

The listed expiries and strikes come from the caller (`engine.listing` or a recorded
chain); nothing here looks anything up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

from engine.calendar import NEW_YORK
from engine.clock import ensure_utc
from engine.errors import Rejected
from engine.marketdata import OptionContract, Right

Direction = Literal["long", "short"]


def direction_of(direction: str) -> Direction:
    """`direction` checked: "long" or "short", else `Rejected("invalid_direction")`."""
    if direction == "long":
        return "long"
    if direction == "short":
        return "short"
    raise Rejected("invalid_direction", f"direction must be long or short, got {direction!r}")


def right_for(direction: str) -> Right:
    """long → call, short → put."""
    return Right.CALL if direction_of(direction) == "long" else Right.PUT


def choose_expiry(listed_expiries: Sequence[date], today: date, target_dte: int) -> date:
    """The first listed expiry at least `target_dte` days after `today`."""
    eligible = [e for e in listed_expiries if (e - today).days >= target_dte]
    if not eligible:
        raise Rejected(
            "no_listed_expiry", f"no listed expiry {target_dte} or more days after {today}"
        )
    return min(eligible)


def choose_strike(listed_strikes: Sequence[float], spot: float, right: Right, offset: int) -> float:
    """The at-the-money listed strike moved `offset` listed strikes out of the money."""
    if not (math.isfinite(spot) and spot > 0):
        raise Rejected("invalid_spot", f"spot must be > 0, got {spot!r}")
    strikes = sorted(set(listed_strikes))
    if not strikes:
        raise Rejected("no_listed_strike", "no strikes are listed")
    atm = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), -strikes[i]))
    index = atm + offset if right is Right.CALL else atm - offset
    if not 0 <= index < len(strikes):
        raise Rejected(
            "no_listed_strike",
            f"{offset} strikes from the ATM {strikes[atm]} {right} is beyond the listed "
            f"{strikes[0]}..{strikes[-1]}",
        )
    return strikes[index]


def choose_contract(
    *,
    symbol: str,
    direction: str,
    spot: float,
    listed_strikes: Sequence[float],
    listed_expiries: Sequence[date],
    target_dte: int,
    strike_offset_steps: int,
    now: datetime,
) -> OptionContract:
    """The option an entry buys (rules in the module docstring); needs no quote."""
    right = right_for(direction)
    today = ensure_utc(now).astimezone(NEW_YORK).date()
    expiry = choose_expiry(listed_expiries, today, target_dte)
    strike = choose_strike(listed_strikes, spot, right, strike_offset_steps)
    return OptionContract(symbol.upper(), expiry, strike, right)
