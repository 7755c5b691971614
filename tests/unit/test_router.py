"""The StrategyRouter's rule (engine/router.py): deterministic, master flag, split shares."""

from __future__ import annotations

import hashlib
import random
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.router import assign, bucket_of

symbols = st.sampled_from(["SPY", "QQQ", "AAPL", "GOOG", "IBM", "BTCUSDTM"])
timeframes = st.sampled_from(["1m", "5m", "15m", "1h", "1D"])
sessions = st.dates(min_value=date(1998, 1, 1), max_value=date(2030, 12, 31))
splits = st.integers(0, 100)


def test_the_bucket_is_sha256_of_the_key_modulo_100() -> None:
    key = "SPY|5m|2013-10-07"
    expected = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 100
    assert bucket_of("SPY", "5m", "2013-10-07") == expected


@given(symbols, timeframes, sessions, splits, st.integers(1, 10**9), st.booleans())
def test_assignment_is_deterministic(  # noqa: PLR0917
    symbol: str, tf: str, session: date, split: int, signal_id: int, master: bool
) -> None:
    args = {
        "experiment_id": "e",
        "signal_id": signal_id,
        "symbol": symbol,
        "timeframe": tf,
        "session": session,
        "split_pct": split,
        "master_on": master,
    }
    assert assign(**args) == assign(**args)  # type: ignore[arg-type]


@given(
    symbols,
    timeframes,
    sessions,
    splits,
    st.integers(1, 10**9),
    st.sampled_from(["session", "signal"]),
)
def test_master_flag_off_is_always_a(  # noqa: PLR0917
    symbol: str, tf: str, session: date, split: int, signal_id: int, unit: str
) -> None:
    a = assign(
        experiment_id="e",
        signal_id=signal_id,
        symbol=symbol,
        timeframe=tf,
        session=session,
        split_pct=split,
        master_on=False,
        unit=unit,  # type: ignore[arg-type]
    )
    assert a.variant == "A"


@given(symbols, timeframes, sessions, st.integers(1, 10**9))
def test_a_unit_stays_in_its_variant_for_the_day_and_b_only_grows_with_the_split(
    symbol: str, tf: str, session: date, signal_id: int
) -> None:
    variants = []
    for split in (5, 10, 25, 50):
        one = assign(
            experiment_id="e",
            signal_id=signal_id,
            symbol=symbol,
            timeframe=tf,
            session=session,
            split_pct=split,
            master_on=True,
        )
        other = assign(
            experiment_id="e",
            signal_id=signal_id + 1,
            symbol=symbol,
            timeframe=tf,
            session=session,
            split_pct=split,
            master_on=True,
        )
        assert one.variant == other.variant  # same session: same variant, whatever the signal
        variants.append(one.variant)
    # once in B at a split, in B at every larger split (a roll-out never moves B back to A)
    first_b = variants.index("B") if "B" in variants else len(variants)
    assert all(v == "B" for v in variants[first_b:])


def test_the_b_share_over_10000_keys_is_within_2_points_of_the_split() -> None:
    rng = random.Random(20131007)
    names = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "GOOG", "AMZN", "IBM", "AIG", "BAC"]
    keys = [
        (
            rng.choice(names),
            rng.choice(["1m", "5m", "15m", "1h"]),
            date(2010, 1, 1) + timedelta(days=rng.randrange(5000)),
        )
        for _ in range(10_000)
    ]
    for split in (5, 10, 25, 50):
        b = sum(
            assign(
                experiment_id="e",
                signal_id=i,
                symbol=s,
                timeframe=tf,
                session=d,
                split_pct=split,
                master_on=True,
            ).variant
            == "B"
            for i, (s, tf, d) in enumerate(keys)
        )
        assert abs(100 * b / len(keys) - split) <= 2, (split, b)


def test_signal_unit_uses_the_signal_id() -> None:
    a = assign(
        experiment_id="e",
        signal_id=42,
        symbol="SPY",
        timeframe="5m",
        session=date(2013, 10, 7),
        split_pct=50,
        master_on=True,
        unit="signal",
    )
    assert a.unit_key == "42" and a.bucket == bucket_of("SPY", "5m", "42")
