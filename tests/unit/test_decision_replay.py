"""Recomputing Engine 2's decisions from logged payloads (engine/decision_replay.py), on a
real enrichment of the bundled SPY data, through a snapshot file and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from actors.engine_two import enrichment_digest
from engine.adapters.replay import ReplayMarketData
from engine.agents.panel import panel
from engine.calendar import xnys_calendar
from engine.decision_replay import replay_signal
from engine.enrichment import build_enrichment
from engine.meta import MetaConfig, cast_vote, decide, decision_payload
from engine.scenarios import get_scenario
from storage.snapshots import read_snapshot, write_snapshot

FLAGS = {"enable_orb": True, "enable_strat": True, "enable_ttm": True, "enable_satyland": True}


def test_a_logged_decision_recomputes_identically_and_a_changed_one_does_not(
    tmp_path: Path,
) -> None:
    enrichment = asyncio.run(
        build_enrichment(
            ReplayMarketData("spy-2013-10"),
            xnys_calendar(),
            signal_id=7,
            symbol="SPY",
            direction="short",
            timeframe="5m",
            as_of=datetime(2013, 10, 7, 14, 0, tzinfo=UTC),
            first_session=get_scenario("spy-2013-10").start,
        )
    )
    digest = enrichment_digest(enrichment)
    back = read_snapshot(write_snapshot(tmp_path, enrichment, digest))
    assert back == enrichment and enrichment_digest(back) == digest

    votes = [v for v in (cast_vote(a, enrichment, FLAGS) for a in panel()) if v is not None]
    meta = decide(7, "short", votes, MetaConfig(threshold=30))
    logged_votes = [decision_payload(v) for v in votes]
    logged_meta = meta.to_payload()
    same = replay_signal(panel(), back, FLAGS, logged_votes, logged_meta)
    assert same.identical, same.differences

    changed = [dict(v) for v in logged_votes]
    changed[0]["confidence"] = changed[0]["confidence"] + 1
    other = replay_signal(panel(), back, FLAGS, changed, {**logged_meta, "trade": not meta.trade})
    assert not other.identical
    assert any(d.startswith(f"{changed[0]['agent']}.confidence") for d in other.differences)
    assert any(d.startswith("meta.trade") for d in other.differences)
    # with a flag the agents did not have, the panel votes differently
    fewer = replay_signal(panel(), back, {}, logged_votes, logged_meta)
    assert "orb: voted True → False" in fewer.differences
