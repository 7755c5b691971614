"""The order tracker's rules: our order states, what a broker's answer moves them to, when
an order is lost, and how our book is reconciled with the broker's.

States (the `orders.status` column):

    pending_execution ─▶ submitted ─▶ partially_filled ─▶ filled
            │                │  │            │
            ▼                │  ▼            ▼
    rejected / failed        │  lost ─▶ (a late answer: partially_filled, filled,
                             ▼                cancelled or rejected)
                  rejected / cancelled / failed

- An order is registered (`submitted`) in the Store *before* it is sent, so a crash
  between sending and hearing back leaves a trace to look up.
- A definitive refusal (`Rejected`) → `rejected`; a failure that certainly did not reach
  the venue → `failed`. An ambiguous one (`engine.broker.Ambiguous`) → look the order up
  by client order id, up to `MAX_LOOKUPS` times; still not found → `lost`.
- `lost` is not final: a late fill or answer from the broker still moves it on.
- `filled`, `cancelled`, `rejected` and `failed` are final.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from engine.broker import BrokerFill, BrokerOrder, BrokerPosition

OrderState = Literal[
    "pending_execution",
    "submitted",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "failed",
    "lost",
]
IN_FLIGHT: frozenset[str] = frozenset({"submitted", "partially_filled", "lost"})
FINAL: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "failed"})
MAX_LOOKUPS = 3

_LATE = frozenset({"submitted", "partially_filled", "filled", "cancelled", "rejected", "lost"})
_NEXT: Mapping[str, frozenset[str]] = {
    "pending_execution": frozenset({"submitted", "rejected", "failed", "cancelled"}),
    "submitted": frozenset(
        {"submitted", "partially_filled", "filled", "cancelled", "rejected", "failed", "lost"}
    ),
    "partially_filled": frozenset({"partially_filled", "filled", "cancelled", "lost"}),
    "lost": _LATE,
}


def can_move(current: str, new: str) -> bool:
    """Whether an order in `current` may move to `new` (staying put counts, except final)."""
    return new in _NEXT.get(current, frozenset())


def state_of(order: BrokerOrder) -> OrderState:
    """Our state for the broker's view of an order."""
    match order.status:
        case "new" | "accepted":
            return "submitted"
        case "partially_filled":
            return "partially_filled"
        case "filled":
            return "filled"
        case "canceled" | "expired":
            return "cancelled"
        case "rejected":
            return "rejected"
    raise AssertionError(f"unknown broker status {order.status!r}")  # pragma: no cover


LookupVerdict = Literal["found", "again", "lost"]


def after_lookup(found: BrokerOrder | None, lookups_done: int) -> LookupVerdict:
    """After the `lookups_done`-th look-up of an ambiguous order: found, look again, or lost."""
    if found is not None:
        return "found"
    return "lost" if lookups_done >= MAX_LOOKUPS else "again"


def missing_fill(
    order: BrokerOrder, recorded_quantity: int, recorded_notional: float
) -> BrokerFill | None:
    """The part of a broker's cumulative fill we have not recorded, as one fill.

    A venue that reports only `filled_quantity` and `filled_avg_price` (an order looked up
    after a disconnect) gives no per-execution ids; what is missing is priced so that our
    recorded fills plus this one average to the broker's price. Its id names the
    cumulative quantity it completes, so the same gap found twice is recorded once.
    """
    gap = order.filled_quantity - recorded_quantity
    if gap <= 0 or order.filled_avg_price is None:
        return None
    price = (order.filled_avg_price * order.filled_quantity - recorded_notional) / gap
    return BrokerFill(
        client_order_id=order.client_order_id,
        fill_id=f"{order.broker_order_id}:cum:{order.filled_quantity}",
        quantity=gap,
        price=round(max(price, 0.0), 10),
        fees=0.0,
        filled_at=order.updated_at,
    )


def within(fills: Sequence[BrokerFill], room: int) -> list[BrokerFill]:
    """The new fills that fit in `room` (the broker's cumulative fill less what we have
    recorded), the last one cut to fit: the same execution reported twice under two ids
    (a stream message after a look-up recorded its cumulative part) is never counted twice.
    """
    kept: list[BrokerFill] = []
    for fill in fills:
        if room <= 0:
            break
        take = min(fill.quantity, room)
        kept.append(fill if take == fill.quantity else replace(fill, quantity=take))
        room -= take
    return kept


DifferenceKind = Literal[
    "not_open_at_broker",
    "state_changed",
    "external_order",
    "external_position",
    "position_mismatch",
    "missing_at_broker",
]


@dataclass(frozen=True, slots=True)
class TrackedOrder:
    """Our view of an order in flight, for reconciliation."""

    order_id: int
    client_order_id: str
    state: str
    filled_quantity: int


@dataclass(frozen=True, slots=True)
class Difference:
    """One way our book and the broker's disagree. `key` is a client order id or an
    instrument; `ours` and `theirs` say what each side holds."""

    kind: DifferenceKind
    key: str
    ours: str | None
    theirs: str | None


def reconcile_orders(
    ours: Sequence[TrackedOrder], known_ids: set[str], broker_open: Sequence[BrokerOrder]
) -> list[Difference]:
    """Our in-flight orders against the broker's open orders.

    - ours in flight, not open at the broker → `not_open_at_broker` (look it up: it may
      have filled or been cancelled while we were not listening, or never arrived);
    - open at the broker in another state or fill → `state_changed`;
    - open at the broker, not one of ours (`known_ids` holds every id we ever sent)
      → `external_order`.
    """
    theirs = {o.client_order_id: o for o in broker_open}
    out: list[Difference] = []
    for mine in ours:
        if mine.state not in IN_FLIGHT:
            continue
        other = theirs.get(mine.client_order_id)
        if other is None:
            out.append(Difference("not_open_at_broker", mine.client_order_id, mine.state, None))
        elif state_of(other) != mine.state or other.filled_quantity != mine.filled_quantity:
            out.append(
                Difference(
                    "state_changed",
                    mine.client_order_id,
                    f"{mine.state}:{mine.filled_quantity}",
                    f"{state_of(other)}:{other.filled_quantity}",
                )
            )
    for cid, other in sorted(theirs.items()):
        if cid not in known_ids:
            out.append(Difference("external_order", cid, None, f"{other.status}:{other.quantity}"))
    return out


def reconcile_positions(
    ours: Mapping[str, int], broker: Sequence[BrokerPosition]
) -> list[Difference]:
    """Our open quantity per instrument (signed) against the broker's positions."""
    theirs = {p.instrument: p.quantity for p in broker if p.quantity != 0}
    out: list[Difference] = []
    for instrument in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(instrument, 0), theirs.get(instrument, 0)
        if mine == other:
            continue
        if mine == 0:
            out.append(Difference("external_position", instrument, None, str(other)))
        elif other == 0:
            out.append(Difference("missing_at_broker", instrument, str(mine), None))
        else:
            out.append(Difference("position_mismatch", instrument, str(mine), str(other)))
    return out
