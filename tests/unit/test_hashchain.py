"""The event log's hash chain (engine/hashchain.py) and the Store's refusal to change events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Rejected
from engine.events import Event
from engine.hashchain import GENESIS, chain_hash, verify
from storage.writes import EVENTS_TABLE, AppendEvents, Insert, Stage, StoreState, Update, plan

T0 = datetime(2013, 10, 7, 14, tzinfo=UTC)


def staged(n: int) -> list[dict[str, Any]]:
    """n events planned through the Store's real staging (no database needed)."""
    state = StoreState(lambda sql, params: [(0,)], last_seq=0)
    stage = Stage(state, T0)
    events = tuple(
        Event("thing_happened", "things", T0 + timedelta(seconds=i), {"i": i}, str(i))
        for i in range(n)
    )
    out = plan(AppendEvents(events), stage)
    return [row for table, row in out.inserts if table == EVENTS_TABLE]


def test_the_chain_links_each_event_to_the_one_before() -> None:
    rows = staged(3)
    assert rows[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    assert rows[2]["hash"] == chain_hash(rows[1]["hash"], rows[2])
    assert verify(rows) == verify(rows, GENESIS)
    assert verify(rows).ok and verify(rows).checked == 3


@given(st.integers(2, 12), st.data())
def test_any_change_removal_or_swap_is_detected(n: int, data: st.DataObject) -> None:
    rows = staged(n)
    i = data.draw(st.integers(0, n - 1))
    how = data.draw(st.sampled_from(["payload", "kind", "event_time", "drop", "swap"]))
    tampered = [dict(r) for r in rows]
    if how == "payload":
        tampered[i]["payload"] = '{"i": -1}'
    elif how == "kind":
        tampered[i]["kind"] = "other"
    elif how == "event_time":
        tampered[i]["event_time"] = tampered[i]["event_time"] + timedelta(microseconds=1)
    elif how == "drop":  # any but the last: a cut tail is found against the Store's head hash
        del tampered[min(i, n - 2)]
    else:
        j = (i + 1) % n
        tampered[i], tampered[j] = tampered[j], tampered[i]
    report = verify(tampered, GENESIS)
    assert not report.ok


def test_the_store_refuses_to_insert_or_update_events_directly() -> None:
    stage = Stage(StoreState(lambda sql, params: [(0,)], last_seq=0), T0)
    with pytest.raises(Rejected, match="immutable_events"):
        plan(Update(EVENTS_TABLE, {"seq": 1}, {"payload": "{}"}), stage)
    with pytest.raises(Rejected, match="immutable_events"):
        plan(Insert(EVENTS_TABLE, ({"seq": 1},)), stage)
