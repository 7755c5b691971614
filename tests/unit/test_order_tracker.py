"""The order tracker's rules (engine/order_tracker.py): states, look-ups, reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from engine.broker import BrokerOrder, BrokerPosition
from engine.order_tracker import (
    FINAL,
    MAX_LOOKUPS,
    Difference,
    TrackedOrder,
    after_lookup,
    can_move,
    missing_fill,
    reconcile_orders,
    reconcile_positions,
    state_of,
)

AT = datetime(2013, 10, 7, 14, 0, tzinfo=UTC)
STATES = [
    "pending_execution",
    "submitted",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "failed",
    "lost",
]


def answer(status: str, filled: int = 0, avg: float | None = None, cid: str = "c1") -> BrokerOrder:
    return BrokerOrder(
        client_order_id=cid,
        broker_order_id=f"b-{cid}",
        instrument="IBM",
        side="buy",
        quantity=5,
        status=status,  # type: ignore[arg-type]
        updated_at=AT,
        filled_quantity=filled,
        filled_avg_price=avg,
    )


def test_the_happy_path_and_the_ways_out() -> None:
    assert can_move("pending_execution", "submitted")
    assert can_move("submitted", "partially_filled")
    assert can_move("partially_filled", "filled")
    assert can_move("submitted", "rejected") and can_move("submitted", "failed")
    assert can_move("submitted", "lost")
    # never straight from pending to filled: an order is registered before it is sent
    assert not can_move("pending_execution", "filled")
    # a partial fill cannot be undone into a rejection
    assert not can_move("partially_filled", "rejected")


def test_a_lost_order_still_accepts_a_late_answer() -> None:
    for late in ("partially_filled", "filled", "cancelled", "rejected"):
        assert can_move("lost", late)


@given(st.sampled_from(sorted(FINAL)), st.sampled_from(STATES))
def test_a_final_state_never_moves(final: str, other: str) -> None:
    assert not can_move(final, other)


def test_broker_statuses_map_to_our_states() -> None:
    expected = {
        "new": "submitted",
        "accepted": "submitted",
        "partially_filled": "partially_filled",
        "filled": "filled",
        "canceled": "cancelled",
        "expired": "cancelled",
        "rejected": "rejected",
    }
    assert {s: state_of(answer(s)) for s in expected} == expected


def test_an_ambiguous_order_is_lost_only_after_three_lookups() -> None:
    assert MAX_LOOKUPS == 3
    assert [after_lookup(None, n) for n in (1, 2, 3)] == ["again", "again", "lost"]
    assert after_lookup(answer("filled", 5, 2.0), 3) == "found"


def test_the_missing_part_of_a_cumulative_fill_is_priced_to_match_the_broker_average() -> None:
    # we recorded 3 @ 2.00; the broker says 5 filled at an average of 2.40:
    # the missing 2 cost 5 × 2.40 − 3 × 2.00 = 6.00, so 3.00 each
    gap = missing_fill(answer("filled", 5, 2.4), 3, 6.0)
    assert gap is not None
    assert (gap.quantity, round(gap.price, 9)) == (2, 3.0)
    assert gap.fill_id == "b-c1:cum:5"
    assert missing_fill(answer("filled", 5, 2.4), 5, 12.0) is None
    assert missing_fill(answer("new"), 0, 0.0) is None


@given(
    st.lists(
        st.tuples(st.integers(1, 50), st.floats(0.01, 50, allow_nan=False)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 5),
)
def test_recorded_fills_plus_the_gap_average_to_the_broker_price(
    fills: list[tuple[int, float]], known: int
) -> None:
    total = sum(q for q, _ in fills)
    avg = sum(q * p for q, p in fills) / total
    seen = fills[: min(known, len(fills) - 1)]
    seen_qty = sum(q for q, _ in seen)
    seen_notional = sum(q * p for q, p in seen)
    gap = missing_fill(answer("filled", total, avg), seen_qty, seen_notional)
    assert gap is not None and gap.quantity == total - seen_qty
    assert abs((seen_notional + gap.quantity * gap.price) / total - avg) < 1e-6


def test_reconciling_orders_finds_each_kind_of_difference() -> None:
    ours = [
        TrackedOrder(1, "gone", "submitted", 0),  # not open at the broker any more
        TrackedOrder(2, "moved", "submitted", 0),  # the broker filled part of it
        TrackedOrder(3, "same", "submitted", 0),  # agrees
        TrackedOrder(4, "done", "filled", 5),  # final: not reconciled
    ]
    broker = [
        answer("partially_filled", 2, 1.5, cid="moved"),
        answer("new", cid="same"),
        answer("new", cid="stranger"),
    ]
    known = {"gone", "moved", "same", "done"}
    assert reconcile_orders(ours, known, broker) == [
        Difference("not_open_at_broker", "gone", "submitted", None),
        Difference("state_changed", "moved", "submitted:0", "partially_filled:2"),
        Difference("external_order", "stranger", None, "new:5"),
    ]


def test_reconciling_positions() -> None:
    ours = {"A": 2, "B": -1, "C": 3}
    broker = [BrokerPosition("A", 2, 1.0), BrokerPosition("C", 1, 1.0), BrokerPosition("D", 4, 1)]
    assert reconcile_positions(ours, broker) == [
        Difference("missing_at_broker", "B", "-1", None),
        Difference("position_mismatch", "C", "3", "1"),
        Difference("external_position", "D", None, "4"),
    ]


def test_a_fill_reported_again_under_another_id_is_not_counted_twice() -> None:
    from engine.broker import BrokerFill
    from engine.order_tracker import within

    stream = BrokerFill("c1", "exec-1", 4, 2.0, 0.0, AT)
    # a look-up already recorded the order's 4 filled as "b-c1:cum:4": no room left
    assert within([stream], 4 - 4) == []
    # two executions, only 3 of room: the second is cut to fit
    a, b = BrokerFill("c1", "e1", 2, 2.0, 0.0, AT), BrokerFill("c1", "e2", 2, 2.1, 0.0, AT)
    kept = within([a, b], 3)
    assert [(f.fill_id, f.quantity) for f in kept] == [("e1", 2), ("e2", 1)]
