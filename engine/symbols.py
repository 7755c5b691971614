"""Trading rules per underlying: tick sizes, lots, multipliers, listed strikes.

One `SymbolProperties` row describes an underlying and its equity options. Tick sizes are
price-dependent: a price below `*_tick_break` uses the `*_tick_below` increment, at or
above it the `*_tick_above` one (equities: $0.0001 below $1.00, $0.01 above; most options:
$0.01 below $3.00, $0.05 above; SPY, QQQ and IWM options: $0.01 at every price).

Listed strikes follow a simple rule: multiples of `strike_step_near` within
`near_band_pct` of spot, multiples of `strike_step_far` further out.

The table is built from plain rows (e.g. the repository's `data/symbol_properties.csv`,
read by `engine.adapters.symbol_file`); a row whose symbol is `*` replaces the built-in
default used for unlisted symbols.

Prices are floats; every comparison with a grid allows `GRID_TOLERANCE` (1e-9 in price
units), and rounded prices are re-rounded to the tick's decimals so they print exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Literal

from engine.errors import Fatal, Rejected

GRID_TOLERANCE = 1e-9
DEFAULT_SYMBOL = "*"

RoundSide = Literal["buy", "sell", "nearest"]


@dataclass(frozen=True, slots=True)
class SymbolProperties:
    """Trading rules for one underlying (`symbol`) and its options."""

    symbol: str
    equity_tick_below: float = 0.0001
    equity_tick_above: float = 0.01
    equity_tick_break: float = 1.0
    equity_lot: int = 1
    equity_min_quantity: int = 1
    option_tick_below: float = 0.01
    option_tick_above: float = 0.05
    option_tick_break: float = 3.0
    option_lot: int = 1
    option_min_quantity: int = 1
    option_multiplier: int = 100
    strike_step_near: float = 1.0
    near_band_pct: float = 0.10
    strike_step_far: float = 5.0

    def __post_init__(self) -> None:
        problem = _first_problem(self)
        if problem is not None:
            raise Fatal(f"invalid symbol properties for {self.symbol!r}: {problem}")


def _first_problem(props: SymbolProperties) -> str | None:
    positive = (
        "equity_tick_below",
        "equity_tick_above",
        "option_tick_below",
        "option_tick_above",
        "equity_lot",
        "equity_min_quantity",
        "option_lot",
        "option_min_quantity",
        "option_multiplier",
        "strike_step_near",
        "strike_step_far",
    )
    for name in positive:
        value = getattr(props, name)
        if not (math.isfinite(value) and value > 0):
            return f"{name} must be > 0, got {value!r}"
    if not (math.isfinite(props.near_band_pct) and props.near_band_pct >= 0):
        return f"near_band_pct must be >= 0, got {props.near_band_pct!r}"
    for kind in ("equity", "option"):
        brk: float = getattr(props, f"{kind}_tick_break")
        above: float = getattr(props, f"{kind}_tick_above")
        # The break price must itself be on the coarser grid, or rounding across it
        # could land on a price that is off its own tick.
        if not (brk > 0 and on_grid(brk, above)):
            return f"{kind}_tick_break {brk!r} must be a positive multiple of {above!r}"
    return None


_INT_FIELDS = frozenset(
    {"equity_lot", "equity_min_quantity", "option_lot", "option_min_quantity", "option_multiplier"}
)
_FIELD_NAMES = tuple(f.name for f in fields(SymbolProperties))


def properties_from_row(row: Mapping[str, str]) -> SymbolProperties:
    """Parse one text row (e.g. from a CSV); blank or missing columns take the default.

    Raises `Fatal` naming the column when a value does not parse: a bad table is an
    operator's problem, not a caller's.
    """
    symbol = (row.get("symbol") or "").strip().upper()
    if not symbol:
        raise Fatal("symbol properties row has no symbol", hint=str(dict(row)))
    values: dict[str, float | int] = {}
    for name in _FIELD_NAMES[1:]:
        text = (row.get(name) or "").strip()
        if not text:
            continue
        try:
            values[name] = int(text) if name in _INT_FIELDS else float(text)
        except ValueError:
            raise Fatal(f"symbol properties for {symbol}: column {name} = {text!r}") from None
    return SymbolProperties(symbol, **values)  # type: ignore[arg-type]


class SymbolTable:
    """Lookup of `SymbolProperties` by underlying, with a default for unlisted symbols."""

    def __init__(
        self, properties: Iterable[SymbolProperties], default: SymbolProperties | None = None
    ) -> None:
        self._by_symbol: dict[str, SymbolProperties] = {}
        self._default = default or SymbolProperties(DEFAULT_SYMBOL)
        for props in properties:
            key = props.symbol.upper()
            if key == DEFAULT_SYMBOL:
                self._default = props
            elif key in self._by_symbol:
                raise Fatal(f"symbol properties listed twice for {key}")
            else:
                self._by_symbol[key] = props

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]]) -> SymbolTable:
        """Build from text rows (see `properties_from_row`); a `*` row is the default."""
        return cls(properties_from_row(row) for row in rows)

    @property
    def default(self) -> SymbolProperties:
        return self._default

    def symbols(self) -> list[str]:
        """The explicitly listed underlyings, sorted."""
        return sorted(self._by_symbol)

    def get(self, underlying: str) -> SymbolProperties:
        """Properties for `underlying` (case-insensitive); the default, renamed, if unlisted."""
        key = underlying.strip().upper()
        found = self._by_symbol.get(key)
        return found if found is not None else replace(self._default, symbol=key)


def _decimals(step: float) -> int:
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def on_grid(value: float, step: float) -> bool:
    """True when `value` is a multiple of `step` within `GRID_TOLERANCE` price units."""
    return abs(value - round(value / step) * step) <= GRID_TOLERANCE


def _snap(units: int, step: float) -> float:
    return round(units * step, _decimals(step))


def option_tick(props: SymbolProperties, price: float) -> float:
    """The option price increment at `price` for this underlying."""
    below = price < props.option_tick_break - GRID_TOLERANCE
    return props.option_tick_below if below else props.option_tick_above


def equity_tick(props: SymbolProperties, price: float) -> float:
    """The share price increment at `price` for this underlying."""
    below = price < props.equity_tick_break - GRID_TOLERANCE
    return props.equity_tick_below if below else props.equity_tick_above


def price_tick(props: SymbolProperties, price: float, is_option: bool) -> float:
    """`option_tick` or `equity_tick`."""
    return option_tick(props, price) if is_option else equity_tick(props, price)


def round_price(price: float, tick: float, side: RoundSide = "nearest") -> float:
    """Put a limit price on the `tick` grid.

    "buy" rounds down (never pay more than asked), "sell" rounds up (never sell for
    less), "nearest" to the closest multiple (halves away from zero). A price within
    `GRID_TOLERANCE` of a grid point is that grid point. The result is rounded to the
    tick's decimals, so `f"{result:.2f}"` of a cent grid is exact.
    """
    if not (math.isfinite(price) and math.isfinite(tick) and tick > 0):
        raise Rejected("invalid_price", f"cannot round price {price!r} to tick {tick!r}")
    units = price / tick
    slack = GRID_TOLERANCE / tick
    if side == "buy":
        n = math.floor(units + slack)
    elif side == "sell":
        n = math.ceil(units - slack)
    elif side == "nearest":
        n = int(math.copysign(math.floor(abs(units) + 0.5 + slack), units))
    else:
        raise Rejected("invalid_side", f"side must be buy, sell or nearest, got {side!r}")
    return _snap(n, tick)


def round_order_price(
    props: SymbolProperties, price: float, side: RoundSide, is_option: bool
) -> float:
    """`round_price` with the tick that applies at `price` for this instrument."""
    return round_price(price, price_tick(props, price, is_option), side)


def round_quantity(qty: float, lot: int, min_qty: int) -> int:
    """Floor `qty` to a whole number of lots; 0 when that is below `min_qty`."""
    if not math.isfinite(qty) or qty <= 0:
        return 0
    lots = math.floor(qty / lot + GRID_TOLERANCE)
    rounded = lots * lot
    return rounded if rounded >= min_qty else 0


def validate_order(props: SymbolProperties, price: float, quantity: float, is_option: bool) -> None:
    """Refuse an order the venue would refuse, with `Rejected`.

    Codes: `non_positive_price`, `price_off_tick`, `non_positive_quantity`,
    `below_min_quantity`, `quantity_off_lot`.
    """
    _validate_price(props, price, is_option)
    lot = props.option_lot if is_option else props.equity_lot
    min_qty = props.option_min_quantity if is_option else props.equity_min_quantity
    what = "contracts" if is_option else "shares"
    if not (math.isfinite(quantity) and quantity > 0):
        raise Rejected("non_positive_quantity", f"quantity must be > 0, got {quantity!r}")
    if quantity < min_qty - GRID_TOLERANCE:
        raise Rejected(
            "below_min_quantity", f"{quantity!r} {what} is below the minimum of {min_qty}"
        )
    if not on_grid(quantity, lot):
        raise Rejected(
            "quantity_off_lot", f"{quantity!r} {what} is not a multiple of the lot {lot}"
        )


def _validate_price(props: SymbolProperties, price: float, is_option: bool) -> None:
    if not (math.isfinite(price) and price > 0):
        raise Rejected("non_positive_price", f"price must be > 0, got {price!r}")
    tick = price_tick(props, price, is_option)
    if not on_grid(price, tick):
        raise Rejected(
            "price_off_tick",
            f"{price!r} is not a multiple of the {props.symbol} "
            f"{'option' if is_option else 'share'} tick {tick!r} at that price",
        )


def strike_grid(props: SymbolProperties, spot: float, width: float) -> list[float]:
    """Listed strikes within `width` (a fraction of spot, 0.10 = ±10 %) of `spot`, ascending.

    Multiples of `strike_step_near` within `near_band_pct` of spot, multiples of
    `strike_step_far` beyond that; only strikes > 0. Empty if no strike falls in the band.
    """
    if not (math.isfinite(spot) and spot > 0):
        raise Rejected("invalid_strike_grid", f"spot must be > 0, got {spot!r}")
    if not (math.isfinite(width) and width > 0):
        raise Rejected("invalid_strike_grid", f"width must be > 0, got {width!r}")
    low, high = spot * (1.0 - width), spot * (1.0 + width)
    near = spot * props.near_band_pct
    strikes = set(_multiples(props.strike_step_near, max(low, spot - near), min(high, spot + near)))
    for strike in _multiples(props.strike_step_far, low, high):
        if abs(strike - spot) >= near - GRID_TOLERANCE:
            strikes.add(strike)
    return sorted(s for s in strikes if s > 0)


def nearest_strike(props: SymbolProperties, spot: float) -> float:
    """The listed strike closest to `spot` (the at-the-money strike; ties go up)."""
    if not (math.isfinite(spot) and spot > 0):
        raise Rejected("invalid_strike_grid", f"spot must be > 0, got {spot!r}")
    # Wide enough to hold at least one far strike above the near band.
    width = props.near_band_pct + props.strike_step_far / spot + GRID_TOLERANCE
    return min(strike_grid(props, spot, width), key=lambda k: (abs(k - spot), -k))


def _multiples(step: float, low: float, high: float) -> list[float]:
    first = math.ceil(low / step - GRID_TOLERANCE / step)
    last = math.floor(high / step + GRID_TOLERANCE / step)
    return [_snap(n, step) for n in range(first, last + 1)]
