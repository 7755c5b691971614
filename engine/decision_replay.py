"""Recompute Engine 2's decisions from the event log (`tandem replay --experiment ID`).

For each signal of the experiment the log holds the snapshot's SHA-256, the flags the
agents were given, each agent's decision and the meta-decision with its config. Replaying
runs the same agents and the same meta-decision on the snapshot and compares, field by
field, with what was logged. Nothing here reads files: the caller passes the snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.agents.base import Agent, Enrichment
from engine.meta import MetaConfig, cast_vote, decide

TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Replayed:
    """One signal: identical, or the differences found (field: logged → recomputed)."""

    signal_id: int
    identical: bool
    differences: tuple[str, ...]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(a == b)


def meta_config(logged: Mapping[str, Any]) -> MetaConfig:
    cfg = dict(logged)
    cfg["non_voting"] = tuple(cfg.get("non_voting", ()))
    return MetaConfig(**cfg)


def replay_signal(
    agents: Sequence[Agent],
    enrichment: Enrichment,
    flags: Mapping[str, bool],
    logged_votes: Sequence[Mapping[str, Any]],
    logged_meta: Mapping[str, Any],
) -> Replayed:
    """Recompute one signal's votes and meta-decision and compare with the log."""
    votes = [v for v in (cast_vote(a, enrichment, flags) for a in agents) if v is not None]
    meta = decide(
        enrichment.signal_id, enrichment.direction, votes, meta_config(logged_meta["config"])
    )
    diffs: list[str] = []
    logged = {v["agent"]: v for v in logged_votes}
    fresh = {v.agent: v for v in votes}
    for name in sorted(set(logged) | set(fresh)):
        if name not in fresh or name not in logged:
            diffs.append(f"{name}: voted {name in logged} → {name in fresh}")
            continue
        for field in ("bias", "confidence", "veto"):
            was, now = logged[name][field], getattr(fresh[name], field)
            if not _same(was, now):
                diffs.append(f"{name}.{field}: {was!r} → {now!r}")
    payload = meta.to_payload()
    for field in ("trade", "reason", "bias", "weighted_confidence", "threshold"):
        if not _same(logged_meta[field], payload[field]):
            diffs.append(f"meta.{field}: {logged_meta[field]!r} → {payload[field]!r}")
    return Replayed(enrichment.signal_id, not diffs, tuple(diffs))
