"""Rule `ema-cross-5m` and the bundled replay alerts: the file equals a fresh generation,
every alert parses, entries and exits alternate within sessions, the crosses agree with
TA-Lib on an independent (polars) 5-minute resampling, and a hypothesis property over
random walks."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from engine.alert_rules import (
    EMA_CROSS_5M,
    alert_due_at,
    ema_crosses,
    five_minute_bars,
    generate_alerts,
    render_alerts_json,
)
from engine.alerts import parse_alert, parse_bar_time
from engine.calendar import NEW_YORK, xnys_calendar

ROOT = Path(__file__).resolve().parents[2]
ALERTS_FILE = ROOT / "data" / "alerts" / "spy-2013-10.ema-cross-5m.json"
GENERATOR = ROOT / "data" / "alerts" / "generate.py"
CAL = xnys_calendar()
FIVE_MIN = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Alerts = list[dict[str, Any]]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alerts_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _generator()


@pytest.fixture(scope="module")
def bundled() -> Alerts:
    alerts: Alerts = json.loads(ALERTS_FILE.read_text(encoding="utf-8"))
    return alerts


@pytest.fixture(scope="module")
def minute_bars(generator: ModuleType) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    bars: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] = generator.load_minute_bars(
        generator.MINUTE_BARS, "SPY", "spy-2013-10"
    )
    return bars


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    """SPY's regular-hours 5-minute bars resampled by polars, with TA-Lib EMA 8 / 21."""
    et = pl.col("ts").dt.convert_time_zone("America/New_York")
    minute = et.dt.hour().cast(pl.Int32) * 60 + et.dt.minute().cast(pl.Int32)
    frame = (
        pl.read_parquet(ROOT / "data" / "bars_1m.parquet")
        .filter(pl.col("symbol") == "SPY")
        .filter(et.dt.date().is_between(date(2013, 10, 4), date(2013, 10, 11)))
        .filter(minute.is_between(9 * 60 + 30, 16 * 60 - 1))
        .sort("ts")
        .group_by_dynamic("ts", every="5m")
        .agg(pl.col("close").last().round(4))
        .with_columns(et.dt.date().alias("day"))
    )
    close = frame["close"].to_numpy()
    return frame.with_columns(
        pl.Series("fast", talib.EMA(close, 8)),
        pl.Series("slow", talib.EMA(close, 21)),
        (pl.col("day") != pl.col("day").shift(-1)).fill_null(True).alias("session_end"),
    )


def _bar_time(alert: dict[str, Any]) -> datetime:
    return parse_bar_time(alert["timestamp"])


def _session(t: datetime) -> date:
    return CAL.session_date(t)


def _assert_alternates(alerts: Alerts) -> None:
    """Entry, exit, entry, exit, ...: one alert per bar, each entry exited in its session."""
    times = [_bar_time(a) for a in alerts]
    assert times == sorted(set(times))
    for k, alert in enumerate(alerts):
        entry = k % 2 == 0
        assert alert["action"] == ("entry" if entry else "exit")
        assert alert["direction"] == ("buy" if entry else "sell")
        assert alert["market_position"] == ("long" if entry else "flat")
        assert alert["prev_market_position"] == ("flat" if entry else "long")
        assert alert["comment"] in (("golden cross",) if entry else ("death cross", "session end"))
        assert alert["strategy"] == EMA_CROSS_5M and alert["timeframe"] == "5"
        assert "secret" not in alert
    assert len(alerts) % 2 == 0, "the last entry is never exited"
    for opened, closed in zip(alerts[::2], alerts[1::2], strict=True):
        assert _session(_bar_time(opened)) == _session(_bar_time(closed))


def _assert_parses(alert: dict[str, Any]) -> None:
    body = json.dumps({**alert, "secret": "dummy-secret"}).encode()
    parsed = parse_alert(body, "application/json")
    assert parsed.secret == "dummy-secret"
    a = parsed.alert
    assert (a.symbol, a.direction, a.timeframe, a.strategy) == ("SPY", "long", "5m", EMA_CROSS_5M)
    assert a.action == alert["action"] and a.is_exit == (alert["action"] == "exit")
    assert a.bar_time == _bar_time(alert) and a.price == alert["price"]


# --- the bundled file ---


def test_the_bundled_file_equals_a_fresh_generation(generator: ModuleType) -> None:
    fresh = generator.build()
    assert render_alerts_json(fresh).encode("utf-8") == ALERTS_FILE.read_bytes()
    assert json.loads(ALERTS_FILE.read_text(encoding="utf-8")) == fresh


def test_the_bundled_file_holds_seven_entries_and_seven_exits(bundled: Alerts) -> None:
    actions = [a["action"] for a in bundled]
    assert (actions.count("entry"), actions.count("exit")) == (7, 7)
    assert [a["comment"] for a in bundled].count("session end") == 1


def test_every_bundled_alert_parses_with_a_secret_added(bundled: Alerts) -> None:
    for alert in bundled:
        _assert_parses(alert)
    keys = {parse_alert(json.dumps(a).encode(), None).alert.dedupe_key for a in bundled}
    assert len(keys) == len(bundled)


def test_bundled_entries_and_exits_alternate_and_every_session_ends_flat(
    bundled: Alerts,
) -> None:
    _assert_alternates(bundled)


def test_bundled_timestamps_are_bar_opens_on_the_5_minute_grid_in_regular_hours(
    bundled: Alerts,
) -> None:
    sessions = set(CAL.sessions_between(date(2013, 10, 4), date(2013, 10, 11)))
    for alert in bundled:
        t = _bar_time(alert)
        day = _session(t)
        assert day in sessions
        assert alert["timestamp"] == t.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert CAL.session_open(day) <= t and t + FIVE_MIN <= CAL.session_close(day)
        assert (t - CAL.session_open(day)) % FIVE_MIN == timedelta(0)
        assert alert_due_at(alert) == t + FIVE_MIN


def test_the_first_alert_is_due_at_its_bar_close() -> None:
    alert = {"timeframe": "5", "timestamp": "2013-10-07T15:45:00Z"}
    assert alert_due_at(alert) == datetime(2013, 10, 7, 15, 50, tzinfo=UTC)


# --- against TA-Lib on an independent resampling ---


def test_five_minute_bars_match_a_polars_resampling(
    minute_bars: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]],
    reference: pl.DataFrame,
) -> None:
    bars = five_minute_bars(*minute_bars)
    assert len(reference) == bars.ts.size == 6 * 78
    expected_ts = reference["ts"].dt.epoch("us").to_numpy()
    np.testing.assert_array_equal(bars.ts, expected_ts)
    np.testing.assert_array_equal(bars.close, reference["close"].to_numpy())
    np.testing.assert_array_equal(bars.session_end, reference["session_end"].to_numpy())


def _reference_alerts(ref: pl.DataFrame) -> list[tuple[str, str, str]]:
    """(timestamp, action, comment) by a plain walk over the TA-Lib EMAs."""
    out: list[tuple[str, str, str]] = []
    long, prev = False, None
    for row in ref.iter_rows(named=True):
        fast, slow, stamp = row["fast"], row["slow"], row["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
        up = prev is not None and fast > slow and prev[0] <= prev[1]
        down = prev is not None and fast < slow and prev[0] >= prev[1]
        if long and (down or row["session_end"]):
            out.append((stamp, "exit", "death cross" if down else "session end"))
            long = False
        elif not long and up and not row["session_end"]:
            out.append((stamp, "entry", "golden cross"))
            long = True
        prev = (fast, slow)
    return out


def test_the_bundled_alerts_follow_the_talib_crosses(
    bundled: Alerts, reference: pl.DataFrame
) -> None:
    got = [(a["timestamp"], a["action"], a["comment"]) for a in bundled]
    assert got == _reference_alerts(reference)


@pytest.mark.parametrize(
    ("bar_et", "cross", "alert"),
    [
        # EMA8 - EMA21 goes from -0.0208 (11:40) to +0.0020: a golden cross, entry.
        ("2013-10-07 11:45", "golden", "entry"),
        # Overnight: -0.0733 at 10-09 15:55, +0.1586 at the 10-10 open (a gap up): entry.
        ("2013-10-10 09:30", "golden", "entry"),
        # +0.0002 (12:20) to -0.0228: a death cross closes the long, exit.
        ("2013-10-07 12:25", "death", "exit"),
        # -0.0060 (15:50) to +0.0048 on the session's last bar: no entry.
        ("2013-10-04 15:55", "golden", None),
        # +0.0075 (14:55) to -0.0129 while flat: nothing to close.
        ("2013-10-11 15:00", "death", None),
        # No cross at the 10-10 close (+0.2130), but the long is closed: session end.
        ("2013-10-10 15:55", None, "exit"),
    ],
)
def test_crosses_at_hand_checked_moments(
    bundled: Alerts, reference: pl.DataFrame, bar_et: str, cross: str | None, alert: str | None
) -> None:
    t = datetime.strptime(bar_et, "%Y-%m-%d %H:%M").replace(tzinfo=NEW_YORK).astimezone(UTC)
    k = int(np.flatnonzero(reference["ts"].to_numpy() == np.datetime64(t.replace(tzinfo=None)))[0])
    fast, slow = reference["fast"].to_numpy(), reference["slow"].to_numpy()
    before, after = fast[k - 1] - slow[k - 1], fast[k] - slow[k]
    seen = "golden" if before <= 0 < after else "death" if before >= 0 > after else None
    assert seen == cross
    found = [a["action"] for a in bundled if _bar_time(a) == t]
    assert found == ([alert] if alert else [])


@given(st.integers(0, 2**32 - 1), st.integers(1, 200))
def test_ema_crosses_match_talib_ema_8_and_21(seed: int, size: int) -> None:
    close = 100.0 + np.cumsum(np.random.default_rng(seed).normal(0.0, 0.1, size))
    fast, slow = talib.EMA(close, 8), talib.EMA(close, 21)
    golden, death = ema_crosses(close)
    assert not golden[0] and not death[0]
    np.testing.assert_array_equal(golden[1:], (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1]))
    np.testing.assert_array_equal(death[1:], (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1]))


def test_a_cross_from_equal_emas_counts_as_in_tradingview() -> None:
    # Both EMAs are exactly 0 over the zeros; the step makes EMA 8 lead: a cross at 30.
    golden, death = ema_crosses([0.0] * 30 + [1.0] * 3)
    assert np.flatnonzero(golden).tolist() == [30] and not death.any()
    golden, death = ema_crosses([0.0] * 30 + [-1.0] * 3)
    assert np.flatnonzero(death).tolist() == [30] and not golden.any()


# --- small hand-made cases ---


def _minutes(day: date, start_et: str, closes: list[float]) -> tuple[list[int], list[float]]:
    hour, minute = (int(x) for x in start_et.split(":"))
    first = datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK)
    ts = [_to_us(first + timedelta(minutes=i)) for i in range(len(closes))]
    return ts, closes


def _to_us(t: datetime) -> int:
    return (t.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def test_a_half_day_ends_at_its_12_55_bar_and_extended_hours_are_dropped() -> None:
    day = date(2013, 11, 29)  # the day after Thanksgiving: close 13:00 ET
    ts, closes = _minutes(day, "09:00", [100.0 + i / 100 for i in range(300)])
    bars = five_minute_bars(ts, closes)
    assert bars.ts.size == 42  # 09:30 .. 12:55
    assert bars.ts[0] == _to_us(datetime(2013, 11, 29, 9, 30, tzinfo=NEW_YORK))
    assert bars.ts[-1] == _to_us(datetime(2013, 11, 29, 12, 55, tzinfo=NEW_YORK))
    assert bars.close[-1] == closes[239]  # the 12:59 minute (09:00 + 239 min)
    assert bars.session_end.tolist() == [False] * 41 + [True]


def test_a_missing_minute_leaves_the_last_present_close_and_an_empty_slot_no_bar() -> None:
    ts, closes = _minutes(date(2013, 10, 4), "09:30", [float(100 + i) for i in range(15)])
    keep = [i for i in range(15) if i != 4 and i not in (5, 6, 7, 8, 9)]
    bars = five_minute_bars([ts[i] for i in keep], [closes[i] for i in keep])
    assert bars.ts.tolist() == [ts[0], ts[10]]
    assert bars.close.tolist() == [103.0, 114.0]


def test_no_minute_bars_give_no_alerts_and_unordered_times_are_refused() -> None:
    assert generate_alerts([], [], symbol="SPY") == []
    assert render_alerts_json([]) == "[]\n"
    with pytest.raises(ValueError, match="ascending"):
        generate_alerts([2, 1], [1.0, 1.0], symbol="SPY")


# --- property: random walks ---

WALK_SESSIONS = CAL.sessions_between(date(2013, 11, 25), date(2013, 12, 6))  # a half day in


@st.composite
def random_walk_bars(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    """Minute bars from 08:30 ET to an hour after the close over 1-3 sessions: a rounded
    random walk with some minutes missing."""
    first = draw(st.integers(0, len(WALK_SESSIONS) - 3))
    count = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale, missing = draw(st.sampled_from([0.0, 0.01, 0.05, 0.3])), draw(st.floats(0.0, 0.5))
    ts: list[int] = []
    for day in WALK_SESSIONS[first : first + count]:
        start = CAL.session_open(day) - timedelta(hours=1)
        minutes = int((CAL.session_close(day) - start) / timedelta(minutes=1)) + 60
        ts.extend(_to_us(start + timedelta(minutes=i)) for i in range(minutes))
    walk = np.round(100.0 + np.cumsum(rng.normal(0.0, scale, len(ts))), 2)
    kept = rng.random(len(ts)) >= missing
    return [t for t, k in zip(ts, kept, strict=True) if k], np.maximum(walk[kept], 1.0).tolist()


@given(random_walk_bars())
def test_alerts_alternate_and_close_every_session_on_random_walks(
    bars: tuple[list[int], list[float]],
) -> None:
    ts, closes = bars
    alerts = generate_alerts(ts, closes, symbol="SPY")
    _assert_alternates(alerts)
    assert generate_alerts(ts, closes, symbol="SPY") == alerts  # deterministic
    five = five_minute_bars(ts, closes)
    ends = {int(t) for t in five.ts[five.session_end]}
    for alert in alerts:
        _assert_parses(alert)
        t_us = _to_us(_bar_time(alert))
        assert t_us in set(five.ts.tolist())
        assert (alert["comment"] == "session end") <= (t_us in ends)
        assert not (alert["action"] == "entry" and t_us in ends)
