"""The paper fill model (docs/fills.md), shared by Engine 1, the shadow engine and backtests.

Options: mid ± slippage, capped at the touch, on the option tick grid.

- slip = `slippage_ticks` × the option tick at the mid.
- A buy pays min(up(mid + slip), up(ask)); a sell gets max(down(mid − slip), down(bid)),
  where up/down round to the option tick at that price, up for a buy and down for a sell,
  so rounding never favours us. The cap is the touch: a small marketable order never
  pays more than the offer or gets less than the bid (only the rounding can add a tick
  when a recorded touch is off the grid).
- Hence, for any quote with 0 ≤ bid ≤ ask: the price is on the grid, buy ≥ mid ≥ sell,
  and a sell is never below 0. A buy needs an offer (ask > 0).

Shares (replay): the open of the next bar (the first bar opening at or after the order),
± slippage × the share tick, rounded the same way and capped at the bar's high (buy) or
low (sell): a fill never lies outside the prices that bar actually traded.

Fees are 0 unless a `FeeModel` is passed; the whole order fills at one price.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engine.clock import ensure_utc
from engine.errors import Rejected
from engine.marketdata import Bar, OptionContract, OptionQuote
from engine.orders import InstrumentMode, OrderSide, PlannedOrder
from engine.symbols import RoundSide, SymbolProperties, equity_tick, option_tick, round_price

FeeModel = Callable[[PlannedOrder, float, int], float]
"""(order, fill price, quantity) → fees in account currency, >= 0."""

MODEL_OPTION_MID = "option_mid_slippage"
MODEL_EQUITY_NEXT_OPEN = "equity_next_open"

# `round_price` speaks for limit prices ("buy" rounds down so a bid never pays more); a
# fill model rounds the other way, against us.
_UP: RoundSide = "sell"
_DOWN: RoundSide = "buy"


def zero_fees(order: PlannedOrder, price: float, quantity: int) -> float:
    """The default fee model: no fees."""
    return 0.0


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a whole order. `reference_price` is the mid or open it came from."""

    idempotency_key: str
    client_order_id: str
    engine: str
    symbol: str
    instrument: str
    asset_class: InstrumentMode
    contract: OptionContract | None
    side: OrderSide
    quantity: int
    price: float
    multiplier: int
    fees: float
    filled_at: datetime
    reference_price: float
    model: str

    @property
    def notional(self) -> float:
        """price × quantity × multiplier."""
        return self.price * self.quantity * self.multiplier


def option_fill_price(
    side: OrderSide, bid: float, ask: float, props: SymbolProperties, slippage_ticks: int
) -> float:
    """The option fill price for `side` at a bid/ask (rules in the module docstring)."""
    if not (math.isfinite(bid) and math.isfinite(ask) and 0 <= bid <= ask):
        raise Rejected("invalid_quote", f"need 0 <= bid <= ask, got bid {bid!r} ask {ask!r}")
    if slippage_ticks < 0:
        raise Rejected("invalid_slippage", f"slippage_ticks must be >= 0, got {slippage_ticks}")
    mid = (bid + ask) / 2.0
    slip = slippage_ticks * option_tick(props, mid)
    if side == "buy":
        if ask <= 0:
            raise Rejected("no_offer", "cannot buy: the ask is 0")
        return min(_option_round(props, mid + slip, _UP), _option_round(props, ask, _UP))
    worst = max(mid - slip, 0.0)
    return max(_option_round(props, worst, _DOWN), _option_round(props, bid, _DOWN))


def equity_fill_price(
    side: OrderSide, bar: Bar, props: SymbolProperties, slippage_ticks: int
) -> float:
    """The share fill price for `side` at `bar`'s open (rules in the module docstring)."""
    prices = (bar.open, bar.high, bar.low)
    if not all(math.isfinite(p) and p > 0 for p in prices) or not bar.low <= bar.open <= bar.high:
        raise Rejected("invalid_bar", f"need 0 < low <= open <= high, got {bar!r}")
    if slippage_ticks < 0:
        raise Rejected("invalid_slippage", f"slippage_ticks must be >= 0, got {slippage_ticks}")
    slip = slippage_ticks * equity_tick(props, bar.open)
    if side == "buy":
        return min(_equity_round(props, bar.open + slip, _UP), _equity_round(props, bar.high, _UP))
    worst = max(bar.open - slip, 0.0)
    return max(_equity_round(props, worst, _DOWN), _equity_round(props, bar.low, _DOWN))


def fill_option(
    order: PlannedOrder,
    quote: OptionQuote,
    props: SymbolProperties,
    slippage_ticks: int,
    now: datetime,
    *,
    fees: FeeModel = zero_fees,
) -> Fill:
    """Fill an option order at `quote` (which must be for the order's contract, as of now)."""
    utc = ensure_utc(now)
    if order.asset_class != "option" or order.contract != quote.contract:
        raise Rejected(
            "quote_mismatch",
            f"order {order.instrument} cannot fill at a quote for {quote.contract.occ_symbol}",
        )
    if ensure_utc(quote.ts) > utc:
        raise Rejected("quote_from_future", f"quote at {quote.ts} is after now {utc}")
    price = option_fill_price(order.side, quote.bid, quote.ask, props, slippage_ticks)
    return _fill(order, price, quote.mid, utc, MODEL_OPTION_MID, fees)


def fill_equity_next_open(
    order: PlannedOrder,
    next_bar: Bar,
    props: SymbolProperties,
    slippage_ticks: int,
    now: datetime,
    *,
    fees: FeeModel = zero_fees,
) -> Fill:
    """Fill a share order at the open of `next_bar`, the first bar opening at or after it.

    Needs order.created_at <= next_bar.ts <= now; the fill time is the bar's open.
    """
    if order.asset_class != "equity" or next_bar.symbol.upper() != order.instrument:
        raise Rejected(
            "bar_mismatch", f"order {order.instrument} cannot fill at a {next_bar.symbol} bar"
        )
    opened = ensure_utc(next_bar.ts)
    if not order.created_at <= opened <= ensure_utc(now):
        raise Rejected(
            "not_next_bar",
            f"bar opening {opened} is not between the order ({order.created_at}) and now",
        )
    price = equity_fill_price(order.side, next_bar, props, slippage_ticks)
    return _fill(order, price, next_bar.open, opened, MODEL_EQUITY_NEXT_OPEN, fees)


def _fill(  # noqa: PLR0917
    order: PlannedOrder,
    price: float,
    reference: float,
    at: datetime,
    model: str,
    fees: FeeModel,
) -> Fill:
    fee = fees(order, price, order.quantity)
    if not (math.isfinite(fee) and fee >= 0):
        raise Rejected("invalid_fees", f"the fee model returned {fee!r}")
    return Fill(
        idempotency_key=order.idempotency_key,
        client_order_id=order.client_order_id,
        engine=order.engine,
        symbol=order.symbol,
        instrument=order.instrument,
        asset_class=order.asset_class,
        contract=order.contract,
        side=order.side,
        quantity=order.quantity,
        price=price,
        multiplier=order.multiplier,
        fees=fee,
        filled_at=at,
        reference_price=reference,
        model=model,
    )


def _option_round(props: SymbolProperties, price: float, side: RoundSide) -> float:
    return round_price(price, option_tick(props, price), side)


def _equity_round(props: SymbolProperties, price: float, side: RoundSide) -> float:
    return round_price(price, equity_tick(props, price), side)
