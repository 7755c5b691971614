"""What `tandem replay --experiment` reads from the log and checks per signal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.engine_two import STREAM, enrichment_digest
from engine.agents.base import Agent
from engine.decision_replay import replay_signal
from storage.snapshots import read_snapshot


def engine_two_log(rows: Iterable[Mapping[str, Any]], experiment: str) -> dict[str, Any]:
    """Per signal of `experiment` (`<experiment>/<signal>`): its enrichment event, its agents'
    decisions and its meta-decision, as logged; signals without a decision are left out."""
    prefix = f"{experiment}/"
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["stream"] != STREAM or not str(row["entity_id"] or "").startswith(prefix):
            continue
        slot = found.setdefault(str(row["entity_id"]), {"votes": []})
        payload = json.loads(row["payload"])
        if row["kind"] == "agent_decided":
            slot["votes"].append(payload)
        elif row["kind"] in ("enrichment_complete", "meta_decided"):
            slot[row["kind"]] = payload
    return {k: v for k, v in found.items() if {"enrichment_complete", "meta_decided"} <= set(v)}


def check_signal(slot: Mapping[str, Any], snapshots: Path, agents: Sequence[Agent]) -> str | None:
    """None when the recomputed decisions are the logged ones; else what differs."""
    shot = slot["enrichment_complete"]
    if shot.get("snapshot") is None:
        return "no snapshot was kept"
    enrichment = read_snapshot(snapshots / shot["snapshot"])
    if enrichment_digest(enrichment) != shot["sha256"]:
        return "the snapshot's SHA-256 does not match the log"
    result = replay_signal(agents, enrichment, shot["flags"], slot["votes"], slot["meta_decided"])
    return None if result.identical else "; ".join(result.differences)
