"""The meta-decision: veto first, group weights, the confidence-weighted vote, the record.

Properties run over arbitrary sets of agent decisions (hypothesis); the golden tests run
the real agents on the bundled spy-2013-10 bars.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.replay import ReplayMarketData
from engine.agents.base import Agent, AgentDecision, Enrichment
from engine.agents.panel import panel
from engine.calendar import xnys_calendar
from engine.enrichment import Portfolio, build_enrichment
from engine.errors import Fatal
from engine.meta import METHOD, MetaConfig, cast_vote, decide, weigh

CAL = xnys_calendar()
BASE = {"specialist": 0.40, "core": 0.35, "sub": 0.25}
SPECIALIST_FLAGS = ("enable_orb", "enable_strat", "enable_ttm", "enable_satyland")


def vote(agent: str, group: str, bias: str, confidence: float, veto: bool = False) -> AgentDecision:
    return AgentDecision(
        agent=agent,
        group=group,  # type: ignore[arg-type]
        bias=bias,  # type: ignore[arg-type]
        confidence=confidence,
        reasons=("test",),
        features={"x": 1.0},
        config={"k": 1},
        version="v",
        veto=veto,
    )


@st.composite
def decision_sets(draw: st.DrawFn) -> list[AgentDecision]:
    n = draw(st.integers(min_value=0, max_value=8))
    return [
        vote(
            f"agent{i}",
            draw(st.sampled_from(["specialist", "core", "sub"])),
            draw(st.sampled_from(["long", "short", "neutral"])),
            draw(st.floats(0.0, 100.0)),
            veto=draw(st.booleans()) if i == 0 else False,
        )
        for i in range(n)
    ]


configs = st.builds(
    MetaConfig,
    specialist_weight=st.floats(0.0, 1.0),
    core_weight=st.floats(0.01, 1.0),
    sub_weight=st.floats(0.0, 1.0),
    threshold=st.floats(0.0, 100.0),
)


@given(decision_sets(), configs)
def test_weights_sum_to_one_over_the_groups_present(
    decisions: list[AgentDecision], config: MetaConfig
) -> None:
    weights, groups = weigh(decisions, config)
    present = {d.group for d in decisions}
    total = sum(config.group_weight(g) for g in present)
    if not present or total == 0:
        assert weights == {} and groups == {}
        return
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=1e-12)
    assert math.isclose(sum(groups.values()), 1.0, abs_tol=1e-12)
    for g, w in groups.items():
        assert w == pytest.approx(config.group_weight(g) / total)  # type: ignore[arg-type]
        members = [d.agent for d in decisions if d.group == g]
        assert sum(weights[a] for a in members) == pytest.approx(w)
        assert len({weights[a] for a in members}) == 1  # shared equally within a group


@given(decision_sets(), st.sampled_from(["long", "short"]), configs)
def test_a_veto_always_blocks_and_a_trade_needs_agreement_and_the_threshold(
    decisions: list[AgentDecision], alert: str, config: MetaConfig
) -> None:
    result = decide(3, alert, decisions, config)  # type: ignore[arg-type]
    if any(d.veto for d in decisions):
        assert not result.trade
        assert result.reason == "veto"
        assert result.vetoed_by == ("agent0",)
    if result.trade:
        assert result.bias == alert
        assert result.weighted_confidence >= config.threshold - 1e-9
        assert not result.vetoed_by
    assert 0.0 <= result.weighted_confidence <= 100.0 + 1e-9
    assert result.inputs == tuple(decisions)
    assert result.threshold == config.threshold
    json.dumps(result.to_payload(), allow_nan=False)


def test_risk_does_not_vote_so_core_alone_can_reach_the_threshold() -> None:
    decisions = [
        vote("technical", "core", "long", 80.0),
        vote("context", "core", "long", 60.0),
        vote("risk", "core", "neutral", 0.0),
    ]
    result = decide(1, "long", decisions)
    assert result.weights == {"technical": 0.5, "context": 0.5}
    assert result.group_weights == {"core": 1.0}
    assert result.weighted_confidence == pytest.approx(70.0)
    assert (result.trade, result.reason, result.bias) == (True, "trade", "long")


def test_weights_by_group_renormalised_and_a_neutral_voter_dilutes() -> None:
    decisions = [
        vote("orb", "specialist", "long", 90.0),
        vote("ttm", "specialist", "neutral", 0.0),
        vote("technical", "core", "long", 70.0),
        vote("context", "core", "short", 50.0),
        vote("risk", "core", "neutral", 0.0),
    ]
    result = decide(1, "long", decisions)
    # specialists 0.40 / 0.75, core 0.35 / 0.75; shared by two voters in each group
    assert result.group_weights == pytest.approx({"specialist": 0.40 / 0.75, "core": 0.35 / 0.75})
    assert result.weights["orb"] == pytest.approx(0.20 / 0.75)
    expected = (0.20 * 90 + 0.175 * 70 - 0.175 * 50) / 0.75
    assert result.score == pytest.approx(expected)
    assert result.weighted_confidence == pytest.approx(expected)  # 28.67: below 60
    assert (result.trade, result.reason) == (False, "below_threshold")
    lowered = decide(1, "long", decisions, MetaConfig(threshold=25.0))
    assert (lowered.trade, lowered.reason) == (True, "trade")
    assert decide(1, "short", decisions, MetaConfig(threshold=25.0)).reason == "bias_disagrees"


def test_exactly_the_threshold_trades_and_cancelling_votes_are_neutral() -> None:
    at = decide(1, "short", [vote("a", "core", "short", 60.0), vote("b", "sub", "short", 60.0)])
    assert at.trade and at.weighted_confidence == pytest.approx(60.0)
    tie = decide(1, "long", [vote("a", "core", "long", 70.0), vote("b", "core", "short", 70.0)])
    assert (tie.bias, tie.score, tie.reason) == ("neutral", 0.0, "bias_disagrees")
    none = decide(1, "long", [vote("risk", "core", "neutral", 0.0)])
    assert (none.reason, none.weights) == ("no_votes", {})


def test_the_record_holds_every_input_weight_and_the_threshold() -> None:
    decisions = [
        vote("technical", "core", "long", 80.0),
        vote("risk", "core", "neutral", 100.0, True),
    ]
    payload = decide(9, "long", decisions).to_payload()
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert payload["reason"] == "veto" and payload["vetoed_by"] == ["risk"]
    assert payload["threshold"] == 60.0
    assert payload["weights"] == {"technical": 1.0}
    assert [d["agent"] for d in payload["inputs"]] == ["technical", "risk"]
    assert payload["inputs"][1]["veto"] is True
    assert payload["config"] == {
        "specialist_weight": 0.40,
        "core_weight": 0.35,
        "sub_weight": 0.25,
        "threshold": 60.0,
        "non_voting": ["risk"],
    }
    assert payload["method"] == METHOD


def test_bad_configuration_and_duplicate_agents_are_refused() -> None:
    with pytest.raises(Fatal):
        MetaConfig(specialist_weight=0.0, core_weight=0.0, sub_weight=0.0)
    with pytest.raises(Fatal):
        MetaConfig(threshold=101.0)
    with pytest.raises(Fatal):
        MetaConfig(core_weight=math.nan)
    with pytest.raises(Fatal):
        decide(1, "long", [vote("a", "core", "long", 1.0), vote("a", "sub", "long", 1.0)])


# ------------------------------------------------------------------ on the bundled real bars


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


def enrich(
    replay: ReplayMarketData, as_of: datetime, portfolio: Portfolio | None = None
) -> Enrichment:
    return asyncio.run(
        build_enrichment(
            replay,
            CAL,
            signal_id=5,
            symbol="SPY",
            direction="short",
            timeframe="5m",
            as_of=as_of,
            portfolio=portfolio,
            first_session=date(2013, 10, 4),
        )
    )


def all_agents() -> list[Agent]:
    return panel()


def test_core_agents_alone_trade_the_sell_off_of_october_8(replay: ReplayMarketData) -> None:
    e = enrich(replay, datetime(2013, 10, 8, 18, 0, tzinfo=UTC))
    decisions = [d for a in all_agents() if (d := cast_vote(a, e, {})) is not None]
    assert [d.agent for d in decisions] == ["technical", "context", "risk"]  # flags off
    technical, context, _ = decisions
    assert (technical.bias, context.bias) == ("short", "short")
    short = decide(5, "short", decisions)
    expected = (technical.confidence + context.confidence) / 2
    assert short.weighted_confidence == pytest.approx(expected)
    assert short.trade == (expected >= 60.0)
    assert decide(5, "long", decisions).reason == "bias_disagrees"
    vetoed = enrich(replay, e.as_of, Portfolio(capital_needed=1_000.0))  # over the 2 % budget
    votes = [d for a in all_agents() if (d := cast_vote(a, vetoed, {})) is not None]
    blocked = decide(5, "short", votes)
    assert (blocked.trade, blocked.reason, blocked.vetoed_by) == (False, "veto", ("risk",))


flag_sets = st.fixed_dictionaries(
    {name: st.booleans() for name in ("enable_variant_b", *SPECIALIST_FLAGS)}
)


@given(
    flags=flag_sets,
    day=st.sampled_from([date(2013, 10, d) for d in (7, 8, 9, 10, 11)]),
    minute=st.integers(0, 389),
)
def test_inactive_agents_produce_no_vote(
    replay: ReplayMarketData, flags: dict[str, bool], day: date, minute: int
) -> None:
    e = enrich(replay, CAL.session_open(day) + timedelta(minutes=minute))
    for agent in all_agents():
        decision = cast_vote(agent, e, flags)
        if not agent.active(e, flags):
            assert decision is None
        if agent.group == "core":
            assert decision is not None  # always active when B runs
        if decision is not None:
            assert decision.agent == agent.name
            lo, hi = agent.bounds
            assert lo <= decision.confidence <= hi
    off = dict.fromkeys(flags, False)
    votes = [d for a in all_agents() if (d := cast_vote(a, e, off)) is not None]
    assert {d.agent for d in votes} == {"technical", "context", "risk"}
