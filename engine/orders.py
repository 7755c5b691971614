"""Order planning: an approved signal becomes one sized order; an exit closes a position.

Engine 1, the shadow Engine 2 and backtests call these same pure functions. Nothing here
does I/O or reads a clock: the caller passes the listed contracts, the quote and `now`.

Entry rules (`PlanConfig`):

- Options (default): the order buys the contract `engine.contract_choice` picks (long →
  call, short → put; expiry from `target_dte`; strike from spot and
  `strike_offset_steps`).
- Equity: shares of the underlying; long buys, short sells short, priced at spot.
- Size: quantity = floor(capital × risk_pct ÷ (premium × multiplier)) whole lots
  (`engine.symbols.round_quantity`), where premium is the option's ask (the most the
  fill model pays at that quote, see docs/fills.md) or the share price. Zero →
  `Rejected("zero_quantity")`.

Idempotency: an entry's key is a function of the engine and the signal id alone, so one
signal can never yield two orders per engine; `client_order_id` is a short hash of it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from engine.clock import ensure_utc
from engine.contract_choice import Direction, choose_contract, direction_of
from engine.errors import Fatal, Rejected
from engine.marketdata import OptionContract, OptionQuote, Right
from engine.symbols import SymbolProperties, SymbolTable, round_quantity

if TYPE_CHECKING:
    from engine.positions import Position
    from engine.risk import RiskLimits

InstrumentMode = Literal["option", "equity"]
OrderSide = Literal["buy", "sell"]
OrderIntent = Literal["entry", "exit"]
OppositeEntry = Literal["reject", "reverse"]
QuoteLookup = Callable[[OptionContract], OptionQuote | None]

ORDER_TYPE_PAPER = "paper"
STATUS_PENDING = "pending_execution"
CLIENT_ORDER_ID_PREFIX = "tdm-"
_CLIENT_ID_HEX = 24  # 96 bits of the hash: short enough for every broker's id field


@dataclass(frozen=True, slots=True)
class PlanConfig:
    """How an entry is planned. Fractions per 1.00: `risk_pct=0.02` risks 2 % of capital.

    `strike_offset_steps`: 0 = at the money (listed strike nearest spot); N > 0 = N listed
    strikes out of the money; N < 0 = in the money.

    `opposite_entry`: what an entry opposite to an open position on its symbol does:
    `reject` it (the default), or `reverse` (close that position first, then enter).
    """

    instrument_mode: InstrumentMode = "option"
    capital: float = 10_000.0
    risk_pct: float = 0.02
    target_dte: int = 7
    strike_offset_steps: int = 0
    opposite_entry: OppositeEntry = "reject"

    def __post_init__(self) -> None:
        if self.opposite_entry not in ("reject", "reverse"):
            raise Fatal(f"opposite_entry must be reject or reverse, got {self.opposite_entry!r}")
        if self.instrument_mode not in ("option", "equity"):
            raise Fatal(f"instrument_mode must be option or equity, got {self.instrument_mode!r}")
        if not (math.isfinite(self.capital) and self.capital > 0):
            raise Fatal(f"capital must be > 0, got {self.capital!r}")
        if not (math.isfinite(self.risk_pct) and 0 < self.risk_pct <= 1):
            raise Fatal(f"risk_pct is a fraction in (0, 1] (0.02 = 2 %), got {self.risk_pct!r}")
        if self.target_dte < 0:
            raise Fatal(f"target_dte must be >= 0, got {self.target_dte!r}")

    @property
    def budget(self) -> float:
        """Capital at risk per trade: capital × risk_pct."""
        return self.capital * self.risk_pct


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order ready to be stored as `pending_execution` and executed (paper by default).

    `instrument` is the OCC symbol for an option, the ticker for shares. `position_side`
    is the side of the position the order opens (entry) or closes (exit).
    `reference_price` is the price it was sized on (entry) or the last mark (exit).
    """

    idempotency_key: str
    client_order_id: str
    intent: OrderIntent
    signal_id: int | None
    engine: str
    symbol: str
    instrument: str
    asset_class: InstrumentMode
    right: Right | None
    strike: float | None
    expiry: date | None
    side: OrderSide
    position_side: Direction
    quantity: int
    multiplier: int
    reference_price: float | None
    created_at: datetime
    limit_price: float | None = None
    order_type: str = ORDER_TYPE_PAPER
    reason: str | None = None

    @property
    def contract(self) -> OptionContract | None:
        """The option contract traded, or None for shares."""
        if self.right is None or self.strike is None or self.expiry is None:
            return None
        return OptionContract(self.symbol, self.expiry, self.strike, self.right)


def entry_key(signal_id: int, engine: str = "live") -> str:
    """The idempotency key of the entry for `signal_id` in `engine` ("live" or "shadow")."""
    return f"{engine}/signal/{signal_id}"


def client_order_id(idempotency_key: str) -> str:
    """A broker-safe id derived from the key alone: `tdm-` + 24 hex digits of its SHA-256."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return CLIENT_ORDER_ID_PREFIX + digest[:_CLIENT_ID_HEX]


def size_quantity(budget: float, premium: float, multiplier: int, lot: int, min_qty: int) -> int:
    """floor(budget ÷ (premium × multiplier)) in whole lots; 0 below `min_qty`."""
    if not (math.isfinite(premium) and premium > 0):
        raise Rejected("no_quote", f"premium must be > 0, got {premium!r}")
    return round_quantity(budget / (premium * multiplier), lot, min_qty)


def plan_entry(
    *,
    signal_id: int,
    symbol: str,
    direction: str,
    spot: float,
    props: SymbolProperties,
    config: PlanConfig,
    now: datetime,
    listed_strikes: Sequence[float] = (),
    listed_expiries: Sequence[date] = (),
    quote_for: QuoteLookup | None = None,
    engine: str = "live",
) -> PlannedOrder:
    """Plan the entry for an approved signal.

    Options: `quote_for(contract)` gives the quote of the chosen contract (a dict's `get`
    over a fetched chain will do); None or an unusable quote raises `Rejected("no_quote")`.
    Equity: sized on `spot`; strikes, expiries and quotes are not used. Codes:
    `invalid_direction`, `invalid_spot`, `no_listed_expiry`, `no_listed_strike`,
    `no_quote`, `zero_quantity`.
    """
    side = direction_of(direction)
    if config.instrument_mode == "equity":
        qty = _share_quantity(spot, props, config)
        return _entry_order(signal_id, engine, now, symbol, None, side, qty, 1, spot)
    contract = choose_contract(
        symbol=symbol,
        direction=direction,
        spot=spot,
        listed_strikes=listed_strikes,
        listed_expiries=listed_expiries,
        target_dte=config.target_dte,
        strike_offset_steps=config.strike_offset_steps,
        now=now,
    )
    premium = _premium(contract, quote_for)
    mult = props.option_multiplier
    qty = size_quantity(config.budget, premium, mult, props.option_lot, props.option_min_quantity)
    _require_quantity(qty, config.budget, premium, mult)
    return _entry_order(signal_id, engine, now, symbol, contract, "long", qty, mult, premium)


def _entry_order(  # noqa: PLR0917
    signal_id: int,
    engine: str,
    now: datetime,
    symbol: str,
    contract: OptionContract | None,
    position_side: Direction,
    quantity: int,
    multiplier: int,
    price: float,
) -> PlannedOrder:
    """An entry order: an option is always bought; shares are bought (long) or sold short."""
    key = entry_key(signal_id, engine)
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="entry",
        signal_id=signal_id,
        engine=engine,
        symbol=symbol.upper(),
        instrument=contract.occ_symbol if contract else symbol.upper(),
        asset_class="option" if contract else "equity",
        right=contract.right if contract else None,
        strike=contract.strike if contract else None,
        expiry=contract.expiry if contract else None,
        side="buy" if position_side == "long" else "sell",
        position_side=position_side,
        quantity=quantity,
        multiplier=multiplier,
        reference_price=price,
        created_at=ensure_utc(now),
    )


def _share_quantity(spot: float, props: SymbolProperties, config: PlanConfig) -> int:
    if not (math.isfinite(spot) and spot > 0):
        raise Rejected("invalid_spot", f"spot must be > 0, got {spot!r}")
    qty = size_quantity(config.budget, spot, 1, props.equity_lot, props.equity_min_quantity)
    _require_quantity(qty, config.budget, spot, 1)
    return qty


def _premium(contract: OptionContract, quote_for: QuoteLookup | None) -> float:
    quote = quote_for(contract) if quote_for is not None else None
    if quote is None:
        raise Rejected("no_quote", f"no quote for {contract.occ_symbol}")
    if quote.contract != contract:
        raise Rejected(
            "no_quote", f"asked for {contract.occ_symbol}, got {quote.contract.occ_symbol}"
        )
    if not (math.isfinite(quote.ask) and quote.ask > 0):
        raise Rejected("no_quote", f"{contract.occ_symbol} has no offer (ask {quote.ask!r})")
    return quote.ask


def _require_quantity(qty: int, budget: float, price: float, multiplier: int) -> None:
    if qty <= 0:
        raise Rejected(
            "zero_quantity",
            f"budget {budget:.2f} buys less than one lot at {price} × {multiplier}",
        )


def plan_exit(
    position: Position,
    now: datetime,
    reason: str,
    *,
    reference_price: float | None = None,
    attempt: int = 0,
) -> PlannedOrder:
    """The order that closes all of `position`: the opposite side, the same quantity.

    Its key is the position's key + `/exit` (+ `/<attempt>` after a failed exit), so an
    exit decided twice on the same position is one order.
    """
    key = f"{position.position_key}/exit" + (f"/{attempt}" if attempt else "")
    return PlannedOrder(
        idempotency_key=key,
        client_order_id=client_order_id(key),
        intent="exit",
        signal_id=None,
        engine=position.engine,
        symbol=position.symbol,
        instrument=position.instrument,
        asset_class=position.asset_class,
        right=position.right,
        strike=position.strike,
        expiry=position.expiry,
        side="sell" if position.side == "long" else "buy",
        position_side=position.side,
        quantity=position.quantity,
        multiplier=position.multiplier,
        reference_price=reference_price,
        created_at=ensure_utc(now),
        reason=reason,
    )


def plan_signal_order(  # noqa: PLR0917
    signal: Mapping[str, Any],
    spot: float,
    chain: Sequence[OptionQuote],
    limits: RiskLimits,
    symbols: SymbolTable,
    plan: PlanConfig,
    at: datetime,
    engine: str = "live",
) -> PlannedOrder:
    """The entry order of an approved signal at `at`, from spot, the listed chain (empty in
    equity mode) and the risk limits (capital and risk per trade): what Engine 1, the
    shadow engine and a backtest all plan with."""
    quotes = {q.contract: q for q in chain}
    config = replace(plan, capital=limits.capital_available, risk_pct=limits.per_trade_risk_pct)
    return plan_entry(
        signal_id=int(signal["signal_id"]),
        symbol=str(signal["symbol"]),
        direction=signal["direction"],
        spot=spot,
        props=symbols.get(str(signal["symbol"])),
        config=config,
        now=at,
        listed_strikes=sorted({c.strike for c in quotes}),
        listed_expiries=sorted({c.expiry for c in quotes}),
        quote_for=quotes.get,
        engine=engine,
    )
