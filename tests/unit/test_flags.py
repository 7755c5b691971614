"""engine/flags.py: the known flags, whitelists, the core agents no flag turns off, and the
experiment split."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.agents.base import Enrichment
from engine.agents.context import ContextAgent
from engine.agents.risk import RiskAgent
from engine.agents.technical import TechnicalAgent
from engine.errors import Fatal, NotFound
from engine.flags import (
    AGENT_FLAGS,
    CORE_AGENTS,
    ENABLE_ORB,
    ENABLE_VARIANT_B,
    KNOWN_FLAGS,
    ExperimentSettings,
    FeatureFlags,
    Flag,
    whitelist_of,
)

SYMBOLS = ("SPY", "QQQ", "SPX", "AAPL", "ES", "NASDAQ:TSLA")
symbols = st.sampled_from(SYMBOLS)
whitelists = st.one_of(st.none(), st.lists(symbols, max_size=4))
rows = st.dictionaries(st.sampled_from(KNOWN_FLAGS), st.tuples(st.booleans(), whitelists))


def test_the_known_flags_are_the_master_the_specialists_and_futures() -> None:
    assert set(KNOWN_FLAGS) == {
        "enable_variant_b",
        "enable_orb",
        "enable_strat",
        "enable_ttm",
        "enable_satyland",
        "enable_futures",
    }
    assert set(AGENT_FLAGS) == {"orb", "strat", "ttm", "satyland"}
    assert set(AGENT_FLAGS.values()) <= set(KNOWN_FLAGS)
    assert set(CORE_AGENTS) == {"technical", "context", "risk"}
    assert not any(agent in name for name in KNOWN_FLAGS for agent in CORE_AGENTS)


def test_every_flag_is_off_by_default_and_without_its_row() -> None:
    for flags in (FeatureFlags(), FeatureFlags.from_rows({})):
        assert not any(flags.enabled(name) for name in KNOWN_FLAGS)
        assert not any(flags.enabled(name, "SPY") for name in KNOWN_FLAGS)
    only_orb = FeatureFlags.from_rows({ENABLE_ORB: (True, None)})
    assert only_orb.enabled(ENABLE_ORB, "SPY") and not only_orb.enabled(ENABLE_VARIANT_B, "SPY")


@pytest.mark.parametrize(
    "name", ["enable_risk", "enable_technical", "enable_context", "risk", "", "ENABLE_ORB"]
)
def test_no_row_can_create_a_flag_and_no_unknown_flag_is_answered(name: str) -> None:
    with pytest.raises(Fatal, match="unknown feature flag"):
        FeatureFlags.from_rows({name: (False, None)})
    with pytest.raises(Fatal):
        Flag(name)
    with pytest.raises(NotFound) as info:
        FeatureFlags().enabled(name, "SPY")
    assert info.value.code == "unknown_flag" and info.value.status == 404


@settings(max_examples=200)
@given(rows=rows, symbol=symbols)
def test_the_core_agents_run_whatever_the_flags(
    rows: dict[str, tuple[bool, list[str] | None]], symbol: str
) -> None:
    flags = FeatureFlags.from_rows(rows)
    assert all(flags.agent_enabled(agent, symbol) for agent in CORE_AGENTS)
    for agent, flag in AGENT_FLAGS.items():
        assert flags.agent_enabled(agent, symbol) == flags.enabled(flag, symbol)


ENRICHMENT = Enrichment(
    signal_id=1,
    symbol="SPY",
    direction="long",
    timeframe="5m",
    as_of=datetime(2013, 10, 7, 15, tzinfo=UTC),
    bars_1m=(),
    bars_1d=(),
    session_open=datetime(2013, 10, 7, 13, 30, tzinfo=UTC),
    session_close=datetime(2013, 10, 7, 20, tzinfo=UTC),
    market_open=True,
)


@settings(max_examples=200)
@given(rows=rows)
def test_the_core_agents_are_active_with_any_flags_they_are_given(
    rows: dict[str, tuple[bool, list[str] | None]],
) -> None:
    given_flags = FeatureFlags.from_rows(rows).for_symbol("SPY")
    all_off = dict.fromkeys(KNOWN_FLAGS, False)
    for agent in (RiskAgent(), TechnicalAgent(), ContextAgent()):
        assert agent.active(ENRICHMENT, given_flags)
        assert agent.active(ENRICHMENT, all_off)


def test_an_unknown_agent_is_refused() -> None:
    with pytest.raises(NotFound) as info:
        FeatureFlags().agent_enabled("oracle", "SPY")
    assert info.value.code == "unknown_agent"


@settings(max_examples=300)
@given(enabled=st.booleans(), whitelist=whitelists, symbol=symbols)
def test_a_whitelist_limits_a_flag_to_its_symbols(
    enabled: bool, whitelist: list[str] | None, symbol: str
) -> None:
    flags = FeatureFlags.from_rows({ENABLE_ORB: (enabled, whitelist)})
    allowed = not whitelist or symbol in whitelist
    assert flags.enabled(ENABLE_ORB, symbol) == (enabled and allowed)
    assert flags.enabled(ENABLE_ORB, symbol.lower()) == (enabled and allowed)
    # without a symbol: on only when on for every symbol
    assert flags.enabled(ENABLE_ORB) == (enabled and not whitelist)
    assert flags.for_symbol(symbol) == {n: flags.enabled(n, symbol) for n in KNOWN_FLAGS}


def test_a_whitelist_is_upper_cased_and_an_empty_one_means_every_symbol() -> None:
    assert whitelist_of([" spy", "QQQ", "spy"]) == frozenset({"SPY", "QQQ"})
    assert whitelist_of([]) == whitelist_of(None) == frozenset()
    flags = FeatureFlags.from_rows({ENABLE_ORB: (True, [])})
    assert flags.enabled(ENABLE_ORB, "ANYTHING") and flags.enabled(ENABLE_ORB)


@pytest.mark.parametrize("bad", ["SPY", ["SP Y"], [""], ["X" * 22], [3], "SPY,QQQ"])
def test_a_whitelist_is_a_list_of_symbols(bad: object) -> None:
    with pytest.raises(ValueError, match="whitelist"):
        whitelist_of(bad)  # type: ignore[arg-type]


def test_enabled_must_be_a_boolean() -> None:
    with pytest.raises(TypeError, match="true or false"):
        FeatureFlags.from_rows({ENABLE_ORB: (1, None)})  # type: ignore[dict-item]


def test_flags_are_frozen_values() -> None:
    flags = FeatureFlags.from_rows({ENABLE_ORB: (True, ["SPY"])})
    assert flags == FeatureFlags.from_rows({ENABLE_ORB: (True, ["spy"])})
    assert flags.flag(ENABLE_ORB) == Flag(ENABLE_ORB, True, frozenset({"SPY"}))
    with pytest.raises(AttributeError):
        flags.flags = ()  # type: ignore[misc]
    with pytest.raises(Fatal):
        FeatureFlags(flags.flags[:-1])


@settings(max_examples=200)
@given(st.integers(0, 100))
def test_split_pct_takes_every_whole_percent(split: int) -> None:
    assert ExperimentSettings.from_rows({"split_pct": float(split)}).split_pct == split
    assert ExperimentSettings(split).split_pct == split


@settings(max_examples=200)
@given(
    st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=101),
        st.floats(allow_nan=True).filter(lambda x: not (0 <= x <= 100 and x == int(x))),
    )
)
def test_split_pct_outside_0_to_100_or_fractional_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="split_pct"):
        ExperimentSettings.from_rows({"split_pct": value})


def test_the_split_defaults_to_zero_and_unknown_settings_are_refused() -> None:
    assert ExperimentSettings.from_rows({}) == ExperimentSettings() == ExperimentSettings(0)
    with pytest.raises(Fatal, match="unknown experiment settings"):
        ExperimentSettings.from_rows({"unit": 1.0})
    with pytest.raises(TypeError):
        ExperimentSettings(True)
    with pytest.raises(TypeError):
        ExperimentSettings(10.0)  # type: ignore[arg-type]
