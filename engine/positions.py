"""Positions as values: opened by a fill, changed by fills, marked to market.

Every transition returns a new `Position` (or None once it is flat) and never mutates.
P&L conventions (sign = +1 long, −1 short; fees in account currency):

- unrealised = (mark − avg_price) × quantity × multiplier × sign, before fees;
- realised on a reduce of q = (exit − avg_price) × q × multiplier × sign − the exit fill's
  fees − the entry fees carried for those q (entry fees are carried pro rata, so with
  zero fees realised is exactly the price difference);
- `pnl_ratio` = unrealised ÷ cost basis (avg_price × quantity × multiplier): the return
  on the premium or share value committed, what exit rules and protections compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime

from engine.clock import ensure_utc
from engine.contract_choice import Direction
from engine.errors import Rejected
from engine.fills import Fill
from engine.marketdata import OptionContract, Right
from engine.orders import InstrumentMode


@dataclass(frozen=True, slots=True)
class Position:
    """An open position in one instrument. `position_key` is the opening order's key."""

    position_key: str
    engine: str
    symbol: str
    instrument: str
    asset_class: InstrumentMode
    side: Direction
    quantity: int
    avg_price: float
    multiplier: int
    opened_at: datetime
    strategy: str | None = None
    right: Right | None = None
    strike: float | None = None
    expiry: date | None = None
    entry_fees: float = 0.0

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1

    @property
    def direction(self) -> Direction:
        """The view on the underlying: a long call or a short put is long, a long put or a
        short call is short; shares are their side."""
        bearish = (self.side == "short") != (self.right == Right.PUT)
        return "short" if bearish else "long"

    @property
    def cost_basis(self) -> float:
        """avg_price × quantity × multiplier."""
        return self.avg_price * self.quantity * self.multiplier

    @property
    def contract(self) -> OptionContract | None:
        if self.right is None or self.strike is None or self.expiry is None:
            return None
        return OptionContract(self.symbol, self.expiry, self.strike, self.right)


@dataclass(frozen=True, slots=True)
class MarkedPosition:
    """A position with its mark: `unrealised_pnl` and `pnl_ratio` as in the module doc."""

    position: Position
    mark: float
    marked_at: datetime
    unrealised_pnl: float
    pnl_ratio: float


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A closed (or partly closed) position, as protections and statistics see it.

    `profit_ratio` is realised P&L ÷ the cost basis of the quantity closed (Freqtrade's
    `close_profit`); `exit_reason` is the exit rule that closed it (`stop_loss`…).
    """

    symbol: str
    closed_at: datetime
    profit_ratio: float
    exit_reason: str
    realised_pnl: float = 0.0
    instrument: str = ""
    side: Direction = "long"

    def __post_init__(self) -> None:
        object.__setattr__(self, "closed_at", ensure_utc(self.closed_at))


def open_position(fill: Fill, strategy: str | None = None) -> Position:
    """The position an entry fill opens: a buy opens a long, a sell a short."""
    contract = fill.contract
    return Position(
        position_key=fill.idempotency_key,
        engine=fill.engine,
        symbol=fill.symbol,
        instrument=fill.instrument,
        asset_class=fill.asset_class,
        side="long" if fill.side == "buy" else "short",
        quantity=fill.quantity,
        avg_price=fill.price,
        multiplier=fill.multiplier,
        opened_at=fill.filled_at,
        strategy=strategy,
        right=contract.right if contract else None,
        strike=contract.strike if contract else None,
        expiry=contract.expiry if contract else None,
        entry_fees=fill.fees,
    )


def apply_fill(position: Position, fill: Fill) -> tuple[Position | None, float]:
    """Add to or reduce `position` by `fill`; returns (the position or None if flat, realised).

    A fill on the position's side adds at a quantity-weighted average price (realised 0).
    An opposite fill reduces it; reducing by more than is held raises
    `Rejected("reduce_beyond_position")`: a reversal is an exit then a new entry.
    """
    if fill.instrument != position.instrument or fill.multiplier != position.multiplier:
        raise Rejected(
            "instrument_mismatch", f"fill for {fill.instrument} on position {position.instrument}"
        )
    if fill.quantity <= 0:
        raise Rejected("non_positive_quantity", f"fill quantity {fill.quantity}")
    adds = (fill.side == "buy") == (position.side == "long")
    if adds:
        quantity = position.quantity + fill.quantity
        avg = (position.avg_price * position.quantity + fill.price * fill.quantity) / quantity
        grown = replace(
            position, quantity=quantity, avg_price=avg, entry_fees=position.entry_fees + fill.fees
        )
        return grown, 0.0
    if fill.quantity > position.quantity:
        raise Rejected(
            "reduce_beyond_position",
            f"cannot reduce {position.quantity} of {position.instrument} by {fill.quantity}",
        )
    carried = position.entry_fees * fill.quantity / position.quantity
    gross = (fill.price - position.avg_price) * fill.quantity * position.multiplier * position.sign
    realised = gross - fill.fees - carried
    left = position.quantity - fill.quantity
    if left == 0:
        return None, realised
    return replace(position, quantity=left, entry_fees=position.entry_fees - carried), realised


def mark(position: Position, price: float, at: datetime) -> MarkedPosition:
    """Mark `position` at `price` (the caller's choice; Tandem marks options at the mid)."""
    if not (math.isfinite(price) and price >= 0):
        raise Rejected("invalid_mark", f"mark price must be >= 0, got {price!r}")
    diff = (price - position.avg_price) * position.sign
    unrealised = diff * position.quantity * position.multiplier
    ratio = diff / position.avg_price if position.avg_price > 0 else 0.0
    return MarkedPosition(position, price, ensure_utc(at), unrealised, ratio)


def closed_trade(
    position: Position, fill: Fill, realised_pnl: float, exit_reason: str
) -> ClosedTrade:
    """The record of closing `fill.quantity` of `position` for protections and statistics."""
    basis = position.avg_price * fill.quantity * position.multiplier
    return ClosedTrade(
        symbol=position.symbol,
        closed_at=fill.filled_at,
        profit_ratio=realised_pnl / basis if basis > 0 else 0.0,
        exit_reason=exit_reason,
        realised_pnl=realised_pnl,
        instrument=position.instrument,
        side=position.side,
    )
