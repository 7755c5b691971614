"""engine.strategies: parameter validation, the registry's lifecycle, `ema-cross` against
the bundled `ema-cross-5m` alerts, golden checks on real bundled bars (resampling against
polars, session VWAP against a per-prefix numpy computation, the squeeze against TA-Lib,
each strategy's alerts against a plain loop over independently computed indicators),
closing rows, and hypothesis properties on random minute bars (alternation, sessions
end flat, regular hours only, bar-open timestamps on the grid, prices, and `latest` on a
growing window == one whole-series call)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alert_rules import generate_alerts
from engine.alerts import parse_alert, parse_bar_time
from engine.calendar import NEW_YORK, xnys_calendar
from engine.errors import Conflict, NotFound, Rejected
from engine.marketdata import Bar
from engine.scenarios import get_scenario
from engine.strategies import (
    MinuteBars,
    Param,
    StrategyRegistry,
    StrategyState,
    default_registry,
    default_strategies,
)
from engine.strategies.base import validate_params
from engine.strategies.ema_cross import EmaCross
from engine.strategies.positions import forward_fill
from engine.strategies.rules import RuleStrategy
from engine.strategies.sessions import regular_hours, session_table
from engine.strategies.ttm_squeeze import TtmSqueeze, run_lengths
from engine.strategies.vwap import VwapMeanReversion, VwapMicroMeanReversion, session_vwap

ROOT = Path(__file__).resolve().parents[2]
MINUTE_BARS = ROOT / "data" / "bars_1m.parquet"
BUNDLED = ROOT / "data" / "alerts" / "spy-2013-10.ema-cross-5m.json"
CAL = xnys_calendar()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_US = 60_000_000
F64 = npt.NDArray[np.float64]
Alerts = list[dict[str, Any]]
Row = tuple[str, str, str]  # (timestamp, action, comment)

STRATEGIES: dict[str, RuleStrategy] = {
    s.name: s for s in (EmaCross(), VwapMeanReversion(), VwapMicroMeanReversion(), TtmSqueeze())
}


def _us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def _stamp(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(alerts: Alerts) -> list[Row]:
    return [(a["timestamp"], a["action"], a["comment"]) for a in alerts]


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return pl.read_parquet(MINUTE_BARS)


def _scenario_frame(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
    """`symbol`'s minute bars on the spy-2013-10 New York dates (extended hours kept),
    closes rounded to 4 decimals as the replay serves them."""
    sessions = list(get_scenario("spy-2013-10").sessions)
    ny_date = pl.col("ts").dt.convert_time_zone("America/New_York").dt.date()
    return (
        frame.filter(pl.col("symbol") == symbol)
        .filter(ny_date.is_in(sessions))
        .with_columns(pl.col("close").round(4))
        .sort("ts")
    )


@pytest.fixture(scope="module")
def spy(frame: pl.DataFrame) -> MinuteBars:
    return MinuteBars.from_frame(_scenario_frame(frame, "SPY"))


@pytest.fixture(scope="module")
def aig(frame: pl.DataFrame) -> MinuteBars:
    return MinuteBars.from_frame(_scenario_frame(frame, "AIG"))


# ---------------------------------------------------------------- validate


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_validate_fills_every_default_in_declaration_order(name: str) -> None:
    strategy = STRATEGIES[name]
    values = strategy.validate({})
    assert list(values) == [p.name for p in strategy.params]
    assert values == {p.name: p.default for p in strategy.params}


def test_ema_cross_defaults() -> None:
    assert EmaCross().validate({}) == {
        "fast": 8,
        "slow": 21,
        "timeframe_minutes": 5,
        "session_flat": True,
    }


def _problems(strategy: RuleStrategy, values: Mapping[str, object]) -> list[dict[str, str]]:
    with pytest.raises(Rejected) as caught:
        strategy.validate(values)
    assert caught.value.code == "invalid_parameters"
    problems: list[dict[str, str]] = caught.value.detail
    return problems


@pytest.mark.parametrize(
    ("values", "field", "problem"),
    [
        ({"fast": 0}, "fast", "must be between 1 and 200"),
        ({"slow": 401}, "slow", "must be between 2 and 400"),
        ({"fast": True}, "fast", "must be an integer"),
        ({"fast": 8.0}, "fast", "must be an integer"),
        ({"fast": "8"}, "fast", "must be an integer"),
        ({"session_flat": 1}, "session_flat", "must be true or false"),
        ({"session_flat": "true"}, "session_flat", "must be true or false"),
        ({"timeframe_minutes": 61}, "timeframe_minutes", "must be between 1 and 60"),
        ({"timeframe_minutes": 7}, "timeframe_minutes", "must divide 390"),
        ({"timeframe_minutes": 60}, "timeframe_minutes", "must divide 390"),
        ({"fast": 21}, "fast", "must be less than slow"),
        ({"fast": 30, "slow": 20}, "fast", "must be less than slow"),
        ({"speed": 3}, "speed", "unknown parameter"),
    ],
)
def test_ema_cross_refuses(values: dict[str, object], field: str, problem: str) -> None:
    assert _problems(EmaCross(), values) == [{"field": field, "problem": problem}]


@pytest.mark.parametrize(
    ("values", "field", "problem"),
    [
        ({"entry_sd": float("nan")}, "entry_sd", "must be a finite number"),
        ({"entry_sd": float("inf")}, "entry_sd", "must be a finite number"),
        ({"entry_sd": False}, "entry_sd", "must be a finite number"),
        ({"entry_sd": 0.1}, "entry_sd", "must be between 0.25 and 6"),
        ({"entry_sd": 3.0}, "stop_sd", "must be above entry_sd"),
        ({"stop_pct": 0.5}, "stop_pct", "must be above entry_pct"),
        ({"warmup_minutes": -1}, "warmup_minutes", "must be between 0 and 300"),
    ],
)
def test_vwap_refuses(values: dict[str, object], field: str, problem: str) -> None:
    assert _problems(VwapMeanReversion(), values) == [{"field": field, "problem": problem}]


def test_the_micro_variant_has_no_timeframe_but_a_time_stop() -> None:
    micro = VwapMicroMeanReversion()
    assert _problems(micro, {"timeframe_minutes": 1}) == [
        {"field": "timeframe_minutes", "problem": "unknown parameter"}
    ]
    assert _problems(micro, {"max_hold_minutes": 0}) == [
        {"field": "max_hold_minutes", "problem": "must be between 1 and 390"}
    ]
    assert micro.validate({"max_hold_minutes": 5})["max_hold_minutes"] == 5


def test_a_float_parameter_takes_an_integer_and_returns_a_float() -> None:
    values = VwapMeanReversion().validate({"entry_sd": 1, "stop_sd": np.float64(2.5)})
    assert values["entry_sd"] == 1.0 and isinstance(values["entry_sd"], float)
    assert values["stop_sd"] == 2.5 and type(values["stop_sd"]) is float


def test_every_problem_is_listed_and_cross_rules_wait_for_valid_fields() -> None:
    problems = _problems(EmaCross(), {"fast": 50, "slow": "x", "colour": 1, "age": 2})
    assert problems == [
        {"field": "age", "problem": "unknown parameter"},
        {"field": "colour", "problem": "unknown parameter"},
        {"field": "slow", "problem": "must be an integer"},
    ]
    both = _problems(EmaCross(), {"fast": 40, "slow": 30, "timeframe_minutes": 7})
    assert {p["field"] for p in both} == {"fast", "timeframe_minutes"}


def test_the_rejection_pickles_with_its_problems() -> None:
    with pytest.raises(Rejected) as caught:
        TtmSqueeze().validate({"period": 1})
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.code, again.detail) == (caught.value.code, caught.value.detail)
    assert again.detail == [{"field": "period", "problem": "must be between 2 and 100"}]


def test_alerts_validate_their_parameters_first(spy: MinuteBars) -> None:
    with pytest.raises(Rejected, match="invalid_parameters"):
        EmaCross().alerts(spy, {"fast": 30})


def test_a_param_refuses_a_default_of_the_wrong_kind_or_out_of_bounds() -> None:
    with pytest.raises(ValueError):
        Param("n", "int", 2.5)
    with pytest.raises(ValueError):
        Param("n", "int", 0, 1, 10)
    with pytest.raises(ValueError):
        Param("x", "float", 1.0, 2.0, 1.0)
    assert validate_params((Param("x", "float", 1.0),), {"x": 1e300}) == {"x": 1e300}
    assert type(Param("x", "float", 1).default) is float
    one_sided = (Param("n", "int", 1, low=1), Param("m", "int", 1, high=5))
    with pytest.raises(Rejected) as caught:
        validate_params(one_sided, {"n": 0, "m": 6})
    assert caught.value.detail == [
        {"field": "n", "problem": "must be at least 1"},
        {"field": "m", "problem": "must be at most 5"},
    ]


# ---------------------------------------------------------------- registry


def test_the_default_registry_holds_the_four_strategies_disabled() -> None:
    registry = default_registry()
    assert registry.names() == (
        "ema-cross",
        "ttm-squeeze",
        "vwap-mean-reversion",
        "vwap-micro-mean-reversion",
    )
    assert registry.names() == tuple(sorted(s.name for s in default_strategies()))
    for name in registry.names():
        assert registry.get(name).name == name
        assert registry.status(name).state is StrategyState.DISABLED
    assert registry.running() == ()


def test_a_strategy_goes_through_its_lifecycle() -> None:
    registry = default_registry()
    assert registry.enable("ema-cross").state is StrategyState.ENABLED
    running = registry.start("ema-cross", {"fast": 5})
    assert running.state is StrategyState.RUNNING
    assert dict(running.params or {}) == {
        "fast": 5,
        "slow": 21,
        "timeframe_minutes": 5,
        "session_flat": True,
    }
    assert registry.running() == (registry.status("ema-cross"),)
    stopped = registry.stop("ema-cross")
    assert (stopped.state, stopped.params) == (StrategyState.ENABLED, None)
    registry.start("ema-cross", {})
    registry.stop("ema-cross")
    assert registry.disable("ema-cross").state is StrategyState.DISABLED


@pytest.mark.parametrize(
    ("moves", "illegal"),
    [
        ([], "start"),
        ([], "stop"),
        ([], "disable"),
        (["enable"], "enable"),
        (["enable"], "stop"),
        (["enable", "start"], "start"),
        (["enable", "start"], "enable"),
        (["enable", "start"], "disable"),
        (["enable", "start", "stop", "disable"], "stop"),
    ],
)
def test_illegal_transitions_raise_a_conflict_and_change_nothing(
    moves: list[str], illegal: str
) -> None:
    registry = default_registry()
    for move in moves:
        _move(registry, move)
    before = registry.status("ttm-squeeze")
    with pytest.raises(Conflict) as caught:
        _move(registry, illegal)
    assert caught.value.code == "illegal_transition" and caught.value.status == 409
    assert caught.value.detail == {
        "strategy": "ttm-squeeze",
        "state": before.state.value,
        "transition": illegal,
    }
    assert registry.status("ttm-squeeze") == before


def _move(registry: StrategyRegistry, move: str) -> None:
    if move == "start":
        registry.start("ttm-squeeze", {})
    else:
        getattr(registry, move)("ttm-squeeze")


def test_start_with_bad_parameters_leaves_the_strategy_enabled() -> None:
    registry = default_registry()
    registry.enable("vwap-mean-reversion")
    with pytest.raises(Rejected, match="invalid_parameters"):
        registry.start("vwap-mean-reversion", {"stop_sd": 1.0})
    assert registry.status("vwap-mean-reversion").state is StrategyState.ENABLED


def test_unknown_and_duplicate_names() -> None:
    registry = StrategyRegistry()
    registry.register(EmaCross())
    with pytest.raises(NotFound) as caught:
        registry.get("nope")
    assert caught.value.code == "unknown_strategy" and caught.value.status == 404
    with pytest.raises(NotFound):
        registry.enable("nope")
    with pytest.raises(Conflict, match="strategy_exists"):
        registry.register(EmaCross())
    assert pickle.loads(pickle.dumps(caught.value)).detail == caught.value.detail


# ---------------------------------------------------------------- MinuteBars


def test_minute_bars_from_a_frame_and_from_bars_agree(frame: pl.DataFrame) -> None:
    part = _scenario_frame(frame, "IBM").head(50)
    from_frame = MinuteBars.from_frame(part.reverse())
    bars = [Bar(**row) for row in part.iter_rows(named=True)]
    from_bars = MinuteBars.from_bars("IBM", bars)
    for name in ("ts_us", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(from_frame, name), getattr(from_bars, name))
    assert from_frame.symbol == "IBM" and len(from_frame) == 50
    assert from_frame.as_of_us == int(from_frame.ts_us[-1]) + MINUTE_US
    assert not from_frame.close.flags.writeable


def test_minute_bars_refuse_bad_input(frame: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="exactly one symbol"):
        MinuteBars.from_frame(frame.head(10_000))
    naive = frame.head(3).with_columns(pl.col("ts").dt.replace_time_zone(None))
    with pytest.raises(ValueError, match="timezone-aware"):
        MinuteBars.from_frame(naive)
    with pytest.raises(ValueError, match="ascending"):
        MinuteBars("X", [2, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="values for"):
        MinuteBars("X", [1, 2], [1], [1, 1], [1, 1], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="before the newest"):
        MinuteBars("X", [0], [1], [1], [1], [1], [1], known_until_us=MINUTE_US - 1)


def test_no_bars_no_alerts() -> None:
    empty = MinuteBars("X", [], [], [], [], [], [])
    for strategy in STRATEGIES.values():
        assert strategy.alerts(empty, {}) == [] and strategy.latest(empty, {}) == []


# ---------------------------------------------------------------- ema-cross == ema-cross-5m


def test_ema_cross_reproduces_the_bundled_alerts_but_for_the_strategy_name(
    spy: MinuteBars,
) -> None:
    bundled: Alerts = json.loads(BUNDLED.read_text(encoding="utf-8"))
    got = EmaCross().alerts(spy, {})
    assert len(got) == len(bundled) == 14
    for ours, theirs in zip(got, bundled, strict=True):
        assert list(ours) == list(theirs)
        assert ours["strategy"] == "ema-cross" and theirs["strategy"] == "ema-cross-5m"
        assert {**ours, "strategy": None} == {**theirs, "strategy": None}
    fresh = generate_alerts(spy.ts_us, spy.close, symbol="SPY")
    assert [{**a, "strategy": None} for a in got] == [{**a, "strategy": None} for a in fresh]


def test_every_alert_parses_as_a_webhook_body(spy: MinuteBars, aig: MinuteBars) -> None:
    for strategy in STRATEGIES.values():
        for bars in (spy, aig):
            for alert in strategy.alerts(bars, {}):
                parsed = parse_alert(json.dumps({**alert, "secret": "s3cret"}).encode(), None)
                assert parsed.alert.strategy == strategy.name
                assert parsed.alert.is_exit == (alert["action"] == "exit")


def test_without_session_flat_positions_are_held_overnight(spy: MinuteBars) -> None:
    alerts = EmaCross().alerts(spy, {"session_flat": False})
    assert "session end" not in {a["comment"] for a in alerts}
    days = [CAL.session_date(parse_bar_time(a["timestamp"])) for a in alerts]
    assert any(days[k] != days[k + 1] for k in range(0, len(days) - 1, 2))
    # The golden cross on 2013-10-04's last bar, which a session-flat run skips, is taken.
    assert _rows(alerts)[0] == ("2013-10-04T19:55:00Z", "entry", "golden cross")
    assert "2013-10-04" not in {a["timestamp"][:10] for a in EmaCross().alerts(spy, {})}


# ---------------------------------------------------------------- golden: bars, VWAP, squeeze


def _rth(frame: pl.DataFrame) -> pl.DataFrame:
    """Regular-hours minutes of the 2013-10 scenario (no half day): 09:30-15:59 ET."""
    et = pl.col("ts").dt.convert_time_zone("America/New_York")
    minute = et.dt.hour().cast(pl.Int32) * 60 + et.dt.minute().cast(pl.Int32)
    return frame.filter(minute.is_between(9 * 60 + 30, 16 * 60 - 1)).with_columns(
        et.dt.date().alias("day")
    )


def _polars_bars(minutes: pl.DataFrame, every: str) -> pl.DataFrame:
    return (
        minutes.group_by_dynamic("ts", every=every)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum().cast(pl.Float64),
            pl.col("day").first(),
            *(pl.col(c).last() for c in ("vwap", "sd") if c in minutes.columns),
        )
        .with_columns(
            (pl.col("day") != pl.col("day").shift(1)).fill_null(True).alias("first"),
            (pl.col("day") != pl.col("day").shift(-1)).fill_null(True).alias("final"),
        )
    )


@pytest.mark.parametrize("symbol", ["SPY", "AIG"])
@pytest.mark.parametrize("minutes", [1, 5, 15])
def test_bars_match_a_polars_resampling(frame: pl.DataFrame, symbol: str, minutes: int) -> None:
    data = _scenario_frame(frame, symbol)
    strategy = EmaCross()
    got = strategy.bars(
        MinuteBars.from_frame(data), strategy.validate({"timeframe_minutes": minutes})
    )
    ref = _polars_bars(_rth(data), f"{minutes}m")
    np.testing.assert_array_equal(got.ts, ref["ts"].dt.epoch("us").to_numpy())
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), ref[name].to_numpy(), err_msg=name)
    np.testing.assert_array_equal(got.first, ref["first"].to_numpy())
    np.testing.assert_array_equal(got.final, ref["final"].to_numpy())
    np.testing.assert_array_equal(got.end, got.ts + minutes * MINUTE_US)


def _prefix_vwap(tp: F64, volume: F64) -> tuple[F64, F64]:
    """VWAP and σ at every minute of one session, each from its own prefix directly:
    Σv·tp/Σv and sqrt(Σv·(tp − VWAP)²/Σv), σ = 0 while every tp is equal."""
    vwap, sd = np.full(tp.size, np.nan), np.full(tp.size, np.nan)
    for j in range(tp.size):
        v, x = volume[: j + 1], tp[: j + 1]
        if v.sum() > 0:
            vwap[j] = np.dot(v, x) / v.sum()
            # σ is exactly 0 while every tp is equal (the rule reads no stretch then)
            spread = np.dot(v, (x - vwap[j]) ** 2) / v.sum() if np.ptp(x) > 0 else 0.0
            sd[j] = np.sqrt(spread)
    return vwap, sd


def _reference_vwap(minutes: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for day in minutes.partition_by("day", maintain_order=True):
        tp = ((day["high"] + day["low"] + day["close"]) / 3).to_numpy()
        vwap, sd = _prefix_vwap(tp, day["volume"].to_numpy().astype(np.float64))
        parts.append(day.with_columns(pl.Series("vwap", vwap), pl.Series("sd", sd)))
    return pl.concat(parts)


def test_session_vwap_by_hand() -> None:
    # One session: tp 10, 12, 11 with volumes 1, 3, 0; then a new session at tp 20.
    start = _us(datetime(2013, 10, 7, 13, 30, tzinfo=UTC))
    ts = [start, start + MINUTE_US, start + 2 * MINUTE_US, start + 1440 * MINUTE_US]
    tp = [10.0, 12.0, 11.0, 20.0]
    bars = MinuteBars("X", ts, tp, tp, tp, tp, [1, 3, 0, 0])
    vwap, sd = session_vwap(regular_hours(bars, session_table(CAL)))
    # (10·1 + 12·3)/4 = 11.5; σ² = (1·1.5² + 3·0.5²)/4 = 0.75
    np.testing.assert_allclose(vwap[:3], [10.0, 11.5, 11.5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sd[:3], [0.0, np.sqrt(0.75), np.sqrt(0.75)], rtol=0, atol=1e-12)
    assert np.isnan(vwap[3]) and np.isnan(sd[3])


@pytest.mark.parametrize("symbol", ["SPY", "AIG", "BAC"])
def test_session_vwap_matches_a_per_prefix_computation(frame: pl.DataFrame, symbol: str) -> None:
    data = _scenario_frame(frame, symbol)
    minutes = regular_hours(MinuteBars.from_frame(data), session_table(CAL))
    vwap, sd = session_vwap(minutes)
    ref = _reference_vwap(_rth(data))
    assert ref.height == minutes.ts.size
    np.testing.assert_allclose(vwap, ref["vwap"].to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(sd, ref["sd"].to_numpy(), rtol=0, atol=1e-9)
    assert np.nanmax(sd) > 0.05


def test_the_squeeze_matches_talib_bbands_and_atr(spy: MinuteBars) -> None:
    strategy = TtmSqueeze()
    values = strategy.validate({})
    bars = strategy.bars(spy, values)
    squeeze = strategy.squeeze(bars, values)
    upper, _, lower = talib.BBANDS(bars.close, 20, 2.0, 2.0, 0)
    middle = talib.EMA(bars.close, 20)
    width = 1.5 * talib.ATR(bars.high, bars.low, bars.close, 20)
    expected = (upper < middle + width) & (lower > middle - width)
    np.testing.assert_array_equal(squeeze.on, expected)
    assert 20 < int(expected.sum()) < bars.close.size - 20  # on and off both happen


def _talib_momentum(high: F64, low: F64, close: F64, n: int) -> F64:
    mid = (talib.MAX(high, n) + talib.MIN(low, n)) / 2.0
    out: F64 = talib.LINEARREG(close - (mid + talib.SMA(close, n)) / 2.0, n)
    return out


# ---------------------------------------------------------------- golden: the rules by loop


@dataclass
class RefBars:
    """Independently resampled bars with the arrays the plain-loop references read."""

    ts: list[int]
    close: F64
    first: list[bool]
    final: list[bool]


def _ref_bars(ref: pl.DataFrame) -> RefBars:
    return RefBars(
        ts=ref["ts"].dt.epoch("us").to_list(),
        close=ref["close"].to_numpy(),
        first=ref["first"].to_list(),
        final=ref["final"].to_list(),
    )


def _loop(
    bars: RefBars,
    entry: Callable[[int], str | None],
    exit_reason: Callable[[int], str | None],
) -> list[Row]:
    """The plain position walk: flat and an entry (not on a final bar) -> long; long and
    an exit reason or the final bar -> flat."""
    out: list[Row] = []
    long = False
    for k, ts in enumerate(bars.ts):
        reason = exit_reason(k) or ("session end" if bars.final[k] else None)
        if long and reason:
            out.append((_stamp(ts), "exit", reason))
            long = False
        elif not long and not reason and (comment := entry(k)):
            out.append((_stamp(ts), "entry", comment))
            long = True
    return out


def test_ttm_squeeze_alerts_follow_a_loop_over_talib(frame: pl.DataFrame) -> None:
    for symbol in ("SPY", "AIG", "BAC", "IBM"):
        data = _scenario_frame(frame, symbol)
        ref = _polars_bars(_rth(data), "5m")
        h, lo, c = (ref[x].to_numpy() for x in ("high", "low", "close"))
        upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        mid, width = talib.EMA(c, 20), 1.5 * talib.ATR(h, lo, c, 20)
        on = ((upper < mid + width) & (lower > mid - width)).tolist()
        mom = _talib_momentum(h, lo, c, 20)

        def entry(k: int, on: list[bool] = on, mom: F64 = mom) -> str | None:
            run = 0
            while k - 1 - run >= 0 and on[k - 1 - run]:
                run += 1
            up = k >= 1 and mom[k] > 0 and mom[k] > mom[k - 1]
            return "squeeze release" if run >= 5 and not on[k] and up else None

        def falling(k: int, mom: F64 = mom) -> str | None:
            down = k >= 2 and mom[k] < mom[k - 1] < mom[k - 2]
            return "momentum falling" if down else None

        expected = _loop(_ref_bars(ref), entry, falling)
        got = _rows(TtmSqueeze().alerts(MinuteBars.from_frame(data), {}))
        assert got == expected, symbol


def test_ema_cross_alerts_follow_a_loop_over_talib(frame: pl.DataFrame) -> None:
    data = _scenario_frame(frame, "BAC")
    ref = _polars_bars(_rth(data), "15m")
    fast, slow = talib.EMA(ref["close"].to_numpy(), 3), talib.EMA(ref["close"].to_numpy(), 7)

    def golden(k: int) -> str | None:
        return "golden cross" if k and fast[k] > slow[k] and fast[k - 1] <= slow[k - 1] else None

    def death(k: int) -> str | None:
        return "death cross" if k and fast[k] < slow[k] and fast[k - 1] >= slow[k - 1] else None

    params = {"fast": 3, "slow": 7, "timeframe_minutes": 15}
    got = _rows(EmaCross().alerts(MinuteBars.from_frame(data), params))
    assert got == _loop(_ref_bars(ref), golden, death) and len(got) >= 6


def _vwap_loop(ref: pl.DataFrame, values: Mapping[str, Any]) -> list[Row]:
    """The VWAP rule walked bar by bar, with its lock and time stop (docs/strategies.md)."""
    unit = "pct" if values["percent_bands"] else "sd"
    enter, stop_band = values[f"entry_{unit}"], values[f"stop_{unit}"]
    hold = values.get("max_hold_minutes")
    out: list[Row] = []
    long, waiting, locked, opened = False, False, False, 0
    for row in ref.iter_rows(named=True):
        ts, close, vwap, sd = row["ts"], row["close"], row["vwap"], row["sd"]
        gap = vwap - close
        stretch = gap / vwap * 100 if unit == "pct" else (gap / sd if sd > 0 else float("nan"))
        reverted = close >= vwap
        locked = False if row["first"] else locked
        locked = True if stretch >= stop_band else False if reverted else locked
        reason = (
            "stop"
            if stretch >= stop_band
            else "vwap reversion"
            if reverted
            else "session end"
            if row["final"]
            else None
        )
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        if long and reason:
            out.append((stamp, "exit", reason))
            long = False
        elif long and hold is not None and ts >= opened + timedelta(minutes=hold):
            out.append((stamp, "exit", "time stop"))
            long, waiting = False, True
        elif waiting:
            waiting = reason is None
        elif not long and reason is None and not locked and enter <= stretch < stop_band:
            session_open = datetime.combine(row["day"], time(9, 30), tzinfo=NEW_YORK)
            if ts - session_open >= timedelta(minutes=values["warmup_minutes"]):
                out.append((stamp, "entry", "stretched below vwap"))
                long, opened = True, ts
    return out


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("vwap-mean-reversion", {}),
        ("vwap-mean-reversion", {"entry_sd": 1.5, "timeframe_minutes": 1}),
        ("vwap-mean-reversion", {"percent_bands": True, "entry_pct": 0.2, "stop_pct": 0.5}),
        ("vwap-micro-mean-reversion", {}),
        ("vwap-micro-mean-reversion", {"max_hold_minutes": 5, "warmup_minutes": 0}),
        ("vwap-micro-mean-reversion", {"percent_bands": True, "entry_pct": 0.1}),
    ],
)
def test_vwap_alerts_follow_a_loop_over_a_per_prefix_vwap(
    frame: pl.DataFrame, name: str, params: dict[str, object]
) -> None:
    strategy = STRATEGIES[name]
    values = strategy.validate(params)
    minutes = strategy.timeframe_minutes(values)
    comments: set[str] = set()
    total = 0
    for symbol in ("SPY", "AIG", "BAC", "IBM"):
        data = _scenario_frame(frame, symbol)
        ref = _polars_bars(_reference_vwap(_rth(data)), f"{minutes}m")
        got = _rows(strategy.alerts(MinuteBars.from_frame(data), params))
        assert got == _vwap_loop(ref, values), symbol
        comments |= {c for _, _, c in got}
        total += len(got)
    assert total >= 4 and "stretched below vwap" in comments


def test_the_micro_variant_uses_its_time_stop_and_stop_on_real_bars(aig: MinuteBars) -> None:
    alerts = VwapMicroMeanReversion().alerts(aig, {})
    assert {"time stop", "stop", "vwap reversion"} <= {a["comment"] for a in alerts}
    for entry, exit_ in zip(alerts[::2], alerts[1::2], strict=True):
        held = parse_bar_time(exit_["timestamp"]) - parse_bar_time(entry["timestamp"])
        assert (held >= timedelta(minutes=15)) == (exit_["comment"] == "time stop")


# ---------------------------------------------------------------- closing rows


def test_a_session_without_its_final_bar_is_closed_at_the_final_slot(spy: MinuteBars) -> None:
    # The bundled long of 2013-10-10 is closed by "session end" on the 15:55 bar. Drop
    # the minutes 15:55-15:59: the exit moves to a closing row stamped 15:55, priced at
    # the 15:54 close, known at the 16:00 close.
    close = _us(CAL.session_close(date(2013, 10, 10)))
    keep = (spy.ts_us < close - 5 * MINUTE_US) | (spy.ts_us >= close)
    cut = MinuteBars(
        "SPY", *(getattr(spy, c)[keep] for c in ("ts_us", "open", "high", "low", "close", "volume"))
    )
    alerts = EmaCross().alerts(cut, {})
    exit_ = next(a for a in alerts if a["timestamp"] == "2013-10-10T19:55:00Z")
    last_close = float(spy.close[spy.ts_us == close - 6 * MINUTE_US][0])
    assert (exit_["action"], exit_["comment"], exit_["price"]) == (
        "exit",
        "session end",
        last_close,
    )
    whole, n = EmaCross().alerts(spy, {}), alerts.index(exit_)
    assert alerts[:n] == whole[:n] and _rows(alerts)[n] == _rows(whole)[n]

    # Live: with data up to 15:54 the exit is not known; at the close it is.
    before = cut.head(int(np.searchsorted(cut.ts_us, close - 5 * MINUTE_US)))
    assert EmaCross().latest(before, {}) == []
    at_close = MinuteBars(
        "SPY",
        before.ts_us,
        before.open,
        before.high,
        before.low,
        before.close,
        before.volume,
        known_until_us=close,
    )
    assert EmaCross().latest(at_close, {}) == [exit_]


# ---------------------------------------------------------------- the state machine


def test_forward_fill_keeps_the_last_candidate() -> None:
    on = np.array([0, 1, 0, 1, 0, 0, 1, 1], dtype=bool)
    off = np.array([1, 0, 0, 0, 1, 0, 1, 0], dtype=bool)
    assert forward_fill(on, off).tolist() == [0, 1, 1, 1, 0, 0, 1, 1]
    assert forward_fill(np.zeros(0, bool), np.zeros(0, bool)).size == 0


def test_run_lengths() -> None:
    on = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], dtype=bool)
    assert run_lengths(on).tolist() == [1, 2, 0, 1, 2, 3, 0, 0, 1]


# ---------------------------------------------------------------- growing windows, real bars


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_latest_on_a_growing_window_equals_the_whole_series_on_real_bars(
    aig: MinuteBars, name: str
) -> None:
    strategy = STRATEGIES[name]
    start = int(np.searchsorted(aig.ts_us, _us(datetime(2013, 10, 7, 4, tzinfo=UTC))))
    stop = int(np.searchsorted(aig.ts_us, _us(datetime(2013, 10, 9, 4, tzinfo=UTC))))
    bars = _slice(aig, start, stop)
    whole = strategy.alerts(bars, {})
    assert whole, "the window should hold alerts"
    grown = [a for n in range(1, len(bars) + 1) for a in strategy.latest(bars.head(n), {})]
    assert grown == whole


def _slice(bars: MinuteBars, start: int, stop: int) -> MinuteBars:
    columns = ("ts_us", "open", "high", "low", "close", "volume")
    return MinuteBars(bars.symbol, *(getattr(bars, c)[start:stop] for c in columns))


# ---------------------------------------------------------------- hypothesis properties

SESSION_PAIRS = (
    (date(2013, 10, 10), date(2013, 10, 11)),
    (date(2013, 11, 1), date(2013, 11, 4)),  # New York leaves daylight time in between
    (date(2015, 12, 24), date(2015, 12, 28)),  # a half day (13:00 close) first
)
TIMEFRAMES = st.sampled_from([1, 2, 3, 5, 13, 15])
PARAMS: dict[str, st.SearchStrategy[dict[str, object]]] = {
    "ema-cross": st.fixed_dictionaries(
        {
            "fast": st.integers(1, 4),
            "slow": st.integers(5, 12),
            "timeframe_minutes": TIMEFRAMES,
            "session_flat": st.booleans(),
        }
    ),
    "vwap-mean-reversion": st.fixed_dictionaries(
        {
            "timeframe_minutes": TIMEFRAMES,
            "percent_bands": st.booleans(),
            "entry_sd": st.floats(0.25, 1.5),
            "stop_sd": st.floats(1.6, 3.0),
            "entry_pct": st.floats(0.01, 0.1),
            "stop_pct": st.floats(0.11, 0.4),
            "warmup_minutes": st.integers(0, 20),
        }
    ),
    "vwap-micro-mean-reversion": st.fixed_dictionaries(
        {
            "percent_bands": st.booleans(),
            "entry_sd": st.floats(0.25, 1.5),
            "stop_sd": st.floats(1.6, 3.0),
            "warmup_minutes": st.integers(0, 20),
            "max_hold_minutes": st.integers(1, 20),
        }
    ),
    "ttm-squeeze": st.fixed_dictionaries(
        {
            "timeframe_minutes": st.sampled_from([1, 2, 3]),
            "period": st.integers(2, 8),
            "bb_mult": st.floats(0.5, 3.0),
            "kc_mult": st.floats(0.5, 3.0),
            "min_squeeze_bars": st.integers(1, 4),
        }
    ),
}
CASES = st.sampled_from(sorted(PARAMS)).flatmap(lambda name: st.tuples(st.just(name), PARAMS[name]))


def _random_bars(seed: int, pair: int, keep: float, edge: int | None) -> MinuteBars:
    """Random-walk minute bars over two sessions with 20 extended minutes either side;
    each minute kept with probability `keep`. With `edge`, only the last `edge` minutes
    of the first session and the first `edge` of the second (and the night between)."""
    rng = np.random.default_rng(seed)
    times: list[int] = []
    for k, day in enumerate(SESSION_PAIRS[pair]):
        start, end = _us(CAL.session_open(day)), _us(CAL.session_close(day))
        if edge is not None:
            start, end = (
                (end - edge * MINUTE_US, end) if k == 0 else (start, start + edge * MINUTE_US)
            )
        times.extend(range(start - 20 * MINUTE_US, end + 20 * MINUTE_US, MINUTE_US))
    ts = np.array(times, dtype=np.int64)
    ts = ts[rng.random(ts.size) < keep]
    steps = rng.normal(0.0, 0.05, ts.size) * (rng.random(ts.size) < 0.8)
    close = np.round(100.0 + np.cumsum(steps), 2)
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) + np.round(rng.exponential(0.02, ts.size), 2)
    low = np.minimum(open_, close) - np.round(rng.exponential(0.02, ts.size), 2)
    volume = rng.integers(0, 1000, ts.size) * (rng.random(ts.size) < 0.9)
    return MinuteBars("RND", ts, open_, high, low, close, volume)


def _session_of(t: datetime) -> tuple[date, datetime, datetime]:
    day = CAL.session_date(t)
    return day, CAL.session_open(day), CAL.session_close(day)


def _check_alerts(
    alerts: Alerts, bars: MinuteBars, strategy: RuleStrategy, values: Mapping[str, object]
) -> None:
    width = timedelta(minutes=strategy.timeframe_minutes(values))
    flat = values.get("session_flat", True)
    times = [parse_bar_time(a["timestamp"]) for a in alerts]
    assert times == sorted(set(times)), "one alert per bar, in time order"
    for k, (alert, t) in enumerate(zip(alerts, times, strict=True)):
        entry = k % 2 == 0
        assert alert["action"] == ("entry" if entry else "exit"), "entries and exits alternate"
        assert alert["direction"] == ("buy" if entry else "sell")
        assert (alert["market_position"], alert["prev_market_position"]) == (
            ("long", "flat") if entry else ("flat", "long")
        )
        assert alert["symbol"] == "RND" and alert["strategy"] == strategy.name
        assert alert["timeframe"] == str(strategy.timeframe_minutes(values))
        day, open_, close = _session_of(t)
        assert CAL.is_session(day) and open_ <= t < close, "regular hours only"
        assert (t - open_) % width == timedelta(0), "a bar open of the timeframe"
        end = min(t + width, close)
        assert _us(end) <= bars.as_of_us, "a complete bar"
        inside = (bars.ts_us >= _us(open_)) & (bars.ts_us < _us(end))
        assert alert["price"] == round(float(bars.close[inside][-1]), 4)
        if flat and entry:
            assert end < close, "no entry on a session's final bar"
        if not flat:
            assert alert["comment"] != "session end"
    if flat:
        for k in range(0, len(alerts), 2):
            day, _, close = _session_of(times[k])
            if _us(close) <= bars.as_of_us:
                assert k + 1 < len(alerts), "a closed session ends flat"
                assert _session_of(times[k + 1])[0] == day, "exited in its own session"


@settings(max_examples=50)
@given(
    case=CASES,
    seed=st.integers(0, 2**32 - 1),
    pair=st.integers(0, len(SESSION_PAIRS) - 1),
    keep=st.sampled_from([1.0, 0.9, 0.5]),
)
def test_alerts_hold_their_invariants_on_random_bars(
    case: tuple[str, dict[str, object]], seed: int, pair: int, keep: float
) -> None:
    name, params = case
    strategy = STRATEGIES[name]
    bars = _random_bars(seed, pair, keep, None)
    _check_alerts(strategy.alerts(bars, params), bars, strategy, strategy.validate(params))
    # Cut inside the second session: its alerts so far hold the same invariants.
    part = bars.head(len(bars) * 3 // 4)
    _check_alerts(strategy.alerts(part, params), part, strategy, strategy.validate(params))


@settings(max_examples=25)
@given(
    case=CASES,
    seed=st.integers(0, 2**32 - 1),
    pair=st.integers(0, len(SESSION_PAIRS) - 1),
    keep=st.sampled_from([1.0, 0.7]),
)
def test_latest_on_a_growing_window_equals_one_whole_series_call(
    case: tuple[str, dict[str, object]], seed: int, pair: int, keep: float
) -> None:
    name, params = case
    strategy = STRATEGIES[name]
    bars = _random_bars(seed, pair, keep, edge=45)
    grown = [a for n in range(1, len(bars) + 1) for a in strategy.latest(bars.head(n), params)]
    assert grown == strategy.alerts(bars, params)
