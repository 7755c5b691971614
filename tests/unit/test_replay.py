"""The replay market data: as-of visibility, named scenarios, recorded and modelled options.

Reference values come from the bundled Parquet files read independently with polars, or
are hand-checked closes quoted in the tests.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.replay import ReplayMarketData, bundled_data_dir
from engine.calendar import xnys_calendar
from engine.errors import NotFound, Rejected
from engine.marketdata import MarketDataPort, OptionContract, OptionQuote, Right, Timeframe
from engine.pricing import bs_price
from engine.quote_models import OPTION_SPREAD_FRACTION
from engine.scenarios import SCENARIOS, get_scenario
from engine.symbols import on_grid

ET = ZoneInfo("America/New_York")
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def et(*args: int) -> datetime:
    return datetime(*args, tzinfo=ET)  # type: ignore[misc]


@pytest.fixture(scope="module")
def spy2013() -> ReplayMarketData:
    return ReplayMarketData("spy-2013-10")


@pytest.fixture(scope="module")
def goog() -> ReplayMarketData:
    return ReplayMarketData("goog-2015-12-24")


@pytest.fixture(scope="module")
def spy2023() -> ReplayMarketData:
    return ReplayMarketData("spy-2023-08-03")


@pytest.fixture(scope="module")
def goog_quotes() -> pl.DataFrame:
    return pl.read_parquet(bundled_data_dir() / "options_quotes_1m.parquet").filter(
        (pl.col("underlying") == "GOOG")
        & (pl.col("ts").dt.convert_time_zone("America/New_York").dt.date() == date(2015, 12, 24))
    )


@pytest.fixture(scope="module")
def goog_contracts(goog_quotes: pl.DataFrame) -> list[tuple[date, str, float]]:
    return goog_quotes.select("expiry", "right", "strike").unique(maintain_order=True).rows()


# --- the port and the scenarios -----------------------------------------------------


def test_replay_implements_the_market_data_port(spy2013: ReplayMarketData) -> None:
    assert isinstance(spy2013, MarketDataPort)
    assert spy2013.name == "replay"


def test_scenarios_are_named_and_described() -> None:
    assert set(SCENARIOS) == {"spy-2013-10", "goog-2015-12-24", "spy-2023-08-03"}
    spy = get_scenario("spy-2013-10")
    assert spy.start == date(2013, 10, 4) and spy.end == date(2013, 10, 11)
    assert len(spy.sessions) == 6 and not spy.recorded_chain
    assert get_scenario("goog-2015-12-24").recorded_chain
    with pytest.raises(NotFound) as err:
        get_scenario("nope")
    assert err.value.code == "unknown_scenario"


def test_timeline_is_the_regular_hours_minute_closes(
    spy2013: ReplayMarketData, goog: ReplayMarketData
) -> None:
    spy_times = spy2013.timeline()
    assert len(spy_times) == 6 * 390
    assert spy_times == sorted(set(spy_times))
    assert spy_times[0] == et(2013, 10, 4, 9, 31) and spy_times[-1] == et(2013, 10, 11, 16, 0)
    goog_times = goog.timeline()
    assert goog_times[0] == et(2015, 12, 24, 9, 31)
    assert goog_times[-1] == et(2015, 12, 24, 13, 0)  # half day: the close is 13:00 ET


def test_unknown_symbol_is_rejected(spy2013: ReplayMarketData) -> None:
    with pytest.raises(NotFound) as err:
        run(spy2013.quote("GOOG", et(2013, 10, 7, 10)))
    assert err.value.code == "unknown_symbol"


# --- visibility -------------------------------------------------------------------------


def test_a_minute_bar_is_visible_only_from_its_close(spy2013: ReplayMarketData) -> None:
    before = run(spy2013.quote("SPY", et(2013, 10, 7, 10, 0, 30)))
    assert before.last == 167.72  # the 09:59 bar's close
    assert before.ts == et(2013, 10, 7, 10, 0)
    after = run(spy2013.quote("SPY", et(2013, 10, 7, 10, 1)))
    assert after.last == 167.74  # the 10:00 bar's close
    assert after.ts == et(2013, 10, 7, 10, 1)
    bars = run(
        spy2013.bars(
            "SPY",
            Timeframe.MINUTE,
            et(2013, 10, 7, 9, 58),
            et(2013, 10, 7, 10, 5),
            et(2013, 10, 7, 10, 0, 30),
        )
    )
    assert [b.ts for b in bars] == [et(2013, 10, 7, 9, 58), et(2013, 10, 7, 9, 59)]


def test_a_daily_bar_is_visible_only_from_its_session_close(
    spy2013: ReplayMarketData, goog: ReplayMarketData
) -> None:
    day_start, day_end = datetime(2013, 10, 7, tzinfo=UTC), datetime(2013, 10, 8, tzinfo=UTC)
    intraday = run(spy2013.bars("SPY", Timeframe.DAY, day_start, day_end, et(2013, 10, 7, 15, 59)))
    assert intraday == []
    closed = run(spy2013.bars("SPY", Timeframe.DAY, day_start, day_end, et(2013, 10, 7, 16, 0)))
    assert [(b.ts, b.close) for b in closed] == [(day_start, 167.42)]

    half_start = datetime(2015, 12, 24, tzinfo=UTC)
    half_end = half_start + timedelta(days=1)
    noon = run(goog.bars("GOOG", Timeframe.DAY, half_start, half_end, et(2015, 12, 24, 12, 59)))
    assert noon == []
    one_pm = run(goog.bars("GOOG", Timeframe.DAY, half_start, half_end, et(2015, 12, 24, 13, 0)))
    assert [b.close for b in one_pm] == [748.4]


def test_before_the_first_bar_of_a_session_the_quote_falls_back_to_the_previous_one(
    spy2013: ReplayMarketData, spy2023: ReplayMarketData
) -> None:
    early = run(spy2013.quote("SPY", et(2013, 10, 7, 3, 0)))
    assert early.ts <= et(2013, 10, 7, 3, 0)
    assert early.ts.astimezone(ET).date() <= date(2013, 10, 5)  # Friday's last bar
    with pytest.raises(Rejected) as err:  # the previous SPY bar is from 2021: too stale
        run(spy2023.quote("SPY", et(2023, 8, 3, 3, 0)))
    assert err.value.code == "unavailable"


def test_equity_quote_spread_model(spy2013: ReplayMarketData) -> None:
    quote = run(spy2013.quote("SPY", et(2013, 10, 7, 10, 1)))
    # spread = max(1 cent, 1 bp of 167.74 = 1.68 cents rounded up to 2 cents)
    assert (quote.bid, quote.ask) == (167.73, 167.75)
    assert quote.mid == pytest.approx(quote.last)


# --- scenarios serve their data -----------------------------------------------------


def test_goog_chain_lists_the_2192_recorded_contracts(
    goog: ReplayMarketData, goog_quotes: pl.DataFrame
) -> None:
    end = et(2015, 12, 24, 13, 15)
    chain = run(goog.option_chain("GOOG", None, end))
    assert len(chain) == 2192
    assert len({q.contract for q in chain}) == 2192
    two_sided = goog_quotes.filter(
        pl.col("bid_close").is_not_null() & pl.col("ask_close").is_not_null()
    )
    recorded_contracts = two_sided.select("expiry", "right", "strike").n_unique()
    assert sum(q.source == "recorded" for q in chain) == recorded_contracts
    assert all(q.ts <= end for q in chain)
    one_expiry = run(goog.option_chain("GOOG", date(2016, 1, 15), end))
    assert {q.contract.expiry for q in one_expiry} == {date(2016, 1, 15)}
    assert goog.expiries("GOOG", end)[0] == date(2015, 12, 24)
    assert len(goog.expiries("GOOG", end)) == 12


def test_goog_recorded_quote_matches_the_parquet_row(goog: ReplayMarketData) -> None:
    call = OptionContract("GOOG", date(2016, 1, 15), 750.0, Right.CALL)
    # The bar opening at 11:00 ET (bid 13.3 / ask 13.8) is visible from 11:01.
    at_open = run(goog.option_quote(call, et(2015, 12, 24, 11, 1)))
    assert (at_open.bid, at_open.ask, at_open.source) == (13.3, 13.8, "recorded")
    assert at_open.ts == et(2015, 12, 24, 11, 1)
    later = run(goog.option_quote(call, et(2015, 12, 24, 11, 2)))
    assert (later.bid, later.ask) == (13.6, 14.0)
    put = run(goog.option_quote(replace_right(call, Right.PUT), et(2015, 12, 24, 11, 1, 59)))
    assert (put.bid, put.ask) == (13.8, 14.4)
    assert at_open.implied_vol is not None and 0.05 < at_open.implied_vol < 1.0


def replace_right(contract: OptionContract, right: Right) -> OptionContract:
    return OptionContract(contract.underlying, contract.expiry, contract.strike, right)


def test_one_sided_goog_bars_are_skipped_for_the_latest_two_sided_bar(
    goog: ReplayMarketData, goog_quotes: pl.DataFrame
) -> None:
    frame = goog_quotes.sort("ts")
    one_sided = frame.filter(pl.col("bid_close").is_null() != pl.col("ask_close").is_null())
    row = one_sided.row(len(one_sided) // 2, named=True)
    contract = OptionContract(
        "GOOG", row["expiry"], row["strike"], Right.CALL if row["right"] == "C" else Right.PUT
    )
    as_of = row["ts"] + timedelta(minutes=1)
    quote = run(goog.option_quote(contract, as_of))
    earlier = frame.filter(
        (pl.col("expiry") == row["expiry"])
        & (pl.col("strike") == row["strike"])
        & (pl.col("right") == row["right"])
        & (pl.col("ts") < row["ts"])
        & pl.col("bid_close").is_not_null()
        & pl.col("ask_close").is_not_null()
    )
    if earlier.is_empty():
        assert quote.source == "model"
    else:
        last = earlier.row(-1, named=True)
        assert quote.source == "recorded"
        assert quote.bid == pytest.approx(last["bid_close"], abs=1e-9)
        assert quote.ask == pytest.approx(last["ask_close"], abs=1e-9)
        assert quote.ts == last["ts"] + timedelta(minutes=1)


def test_spy_2023_serves_its_four_recorded_contracts(spy2023: ReplayMarketData) -> None:
    as_of = et(2023, 8, 3, 10, 1)  # the bar opening at 10:00 ET is visible from 10:01
    chain = run(spy2023.option_chain("SPY", None, as_of))
    quotes = {(q.contract.strike, q.contract.right): q for q in chain}
    assert len(chain) == 4 and all(q.source == "recorded" for q in chain)
    assert {q.contract.expiry for q in chain} == {date(2023, 9, 1)}
    expected = {
        (430.0, Right.CALL): (22.79, 23.25),
        (470.0, Right.CALL): (0.68, 0.69),
        (430.0, Right.PUT): (2.15, 2.16),
        (470.0, Right.PUT): (20.79, 21.42),
    }
    assert {key: (q.bid, q.ask) for key, q in quotes.items()} == expected
    assert quotes[(430.0, Right.CALL)].underlying_price == 448.93
    assert spy2023.expiries("SPY", as_of) == [date(2023, 9, 1)]
    # Nothing for an expiry the recorded chain does not list.
    assert run(spy2023.option_chain("SPY", date(2023, 8, 4), as_of)) == []


def test_spy_2023_daily_history_features_report_unavailable(spy2023: ReplayMarketData) -> None:
    as_of = et(2023, 8, 3, 11, 0)
    with pytest.raises(Rejected) as bars_err:
        run(spy2023.bars("SPY", Timeframe.DAY, datetime(2023, 6, 1, tzinfo=UTC), as_of, as_of))
    assert bars_err.value.code == "unavailable"
    assert "2021-03-31" in str(bars_err.value.detail)
    with pytest.raises(Rejected) as vol_err:
        spy2023.daily_volatility("SPY", as_of)
    assert vol_err.value.code == "unavailable"
    fallback = spy2023.volatility("SPY", as_of)
    assert fallback.method == "minute" and fallback.returns == 89
    assert 0.01 < fallback.value < 1.0
    # A model quote for an unrecorded contract uses that minute vol.
    modelled = run(
        spy2023.option_quote(OptionContract("SPY", date(2023, 8, 18), 450.0, Right.CALL), as_of)
    )
    assert modelled.source == "model" and modelled.implied_vol == fallback.value
    # Too early for minute vol: fewer than 30 returns.
    with pytest.raises(Rejected) as early:
        spy2023.volatility("SPY", et(2023, 8, 3, 9, 45))
    assert early.value.code == "unavailable"


def test_daily_bars_window_history_and_gaps(spy2013: ReplayMarketData) -> None:
    as_of = et(2013, 10, 7, 12, 0)
    history = run(
        spy2013.bars("SPY", Timeframe.DAY, datetime(2013, 9, 1, tzinfo=UTC), as_of, as_of)
    )
    calendar = xnys_calendar()
    assert [b.ts.date() for b in history] == calendar.sessions_between(
        date(2013, 9, 1), date(2013, 10, 4)
    )
    with pytest.raises(Rejected) as err:  # a minute window over sessions not in the scenario
        run(spy2013.bars("SPY", Timeframe.MINUTE, et(2013, 10, 2, 9), as_of, as_of))
    assert err.value.code == "unavailable"


# --- modelled options -------------------------------------------------------------------


def test_modelled_option_quote_is_bs_at_daily_realised_vol(spy2013: ReplayMarketData) -> None:
    as_of = et(2013, 10, 7, 11, 0)
    contract = OptionContract("SPY", date(2013, 10, 18), 168.0, Right.CALL)
    quote = run(spy2013.option_quote(contract, as_of))
    # The reference vol, from the daily Parquet: 20 log returns up to Friday 2013-10-04.
    daily = pl.read_parquet(bundled_data_dir() / "bars_1d.parquet").filter(
        (pl.col("symbol") == "SPY") & (pl.col("ts") <= datetime(2013, 10, 4, tzinfo=UTC))
    )
    closes = daily["close"].to_numpy()[-21:]
    vol = float(np.std(np.diff(np.log(closes)), ddof=1)) * math.sqrt(252)
    spot = run(spy2013.quote("SPY", as_of)).last
    t_years = (datetime(2013, 10, 18, 20, 0, tzinfo=UTC) - as_of) / timedelta(days=365)
    value = bs_price(spot, 168.0, t_years, 0.0075, vol, Right.CALL)
    assert quote.source == "model"
    assert quote.implied_vol == pytest.approx(vol, rel=1e-12)
    assert quote.underlying_price == spot and quote.ts <= as_of
    assert quote.bid < quote.ask
    assert quote.bid <= value <= quote.ask
    assert on_grid(quote.bid, 0.01) and on_grid(quote.ask, 0.01)
    assert quote.ask - quote.bid <= OPTION_SPREAD_FRACTION * value + 0.02 + 1e-9


def test_modelled_chain_is_the_listing_rule_around_spot(spy2013: ReplayMarketData) -> None:
    as_of = et(2013, 10, 7, 11, 0)
    chain = run(spy2013.option_chain("SPY", date(2013, 10, 18), as_of))
    strikes = sorted({q.contract.strike for q in chain})
    assert all(q.source == "model" and q.contract.expiry == date(2013, 10, 18) for q in chain)
    assert len(chain) == 2 * len(strikes)
    assert {152.0, 168.0, 184.0, 120.0, 215.0} <= set(strikes)
    calls = sorted((q for q in chain if q.contract.right is Right.CALL), key=_strike)
    mids = [q.mid for q in calls]
    assert mids == sorted(mids, reverse=True)  # call value falls as the strike rises
    assert run(spy2013.option_chain("SPY", date(2013, 10, 16), as_of)) == []  # not listed


def _strike(quote: OptionQuote) -> float:
    return quote.contract.strike


def test_an_expired_contract_is_rejected(spy2013: ReplayMarketData) -> None:
    with pytest.raises(Rejected) as err:
        run(
            spy2013.option_quote(
                OptionContract("SPY", date(2013, 10, 4), 168.0, Right.PUT), et(2013, 10, 7, 10)
            )
        )
    assert err.value.code == "expired"


# --- nothing from the future ------------------------------------------------------------

_SPY_RAW = pl.read_parquet(bundled_data_dir() / "bars_1m.parquet").filter(pl.col("symbol") == "SPY")
_SPY_TS = _SPY_RAW["ts"].dt.epoch("us").to_numpy()
_SPY_CLOSE = _SPY_RAW["close"].to_numpy()


@given(
    as_of=st.datetimes(
        min_value=datetime(2013, 10, 3, 20),
        max_value=datetime(2013, 10, 12, 2),
        timezones=st.just(UTC),
    ),
    lookback_minutes=st.integers(min_value=1, max_value=3 * 24 * 60),
    ahead_minutes=st.integers(min_value=0, max_value=24 * 60),
)
def test_nothing_returned_is_visible_after_as_of(
    spy2013: ReplayMarketData, as_of: datetime, lookback_minutes: int, ahead_minutes: int
) -> None:
    start = as_of - timedelta(minutes=lookback_minutes)
    end = as_of + timedelta(minutes=ahead_minutes)
    try:
        quote = run(spy2013.quote("SPY", as_of))
    except Rejected as err:
        assert err.code == "unavailable"
    else:
        assert quote.ts <= as_of
        _assert_matches_reference(quote.last, quote.ts, as_of)
    for tf, width in ((Timeframe.MINUTE, timedelta(minutes=1)), (Timeframe.DAY, None)):
        try:
            bars = run(spy2013.bars("SPY", tf, start, end, as_of))
        except Rejected as err:
            assert err.code == "unavailable"
            continue
        for bar in bars:
            assert start <= bar.ts < end
            visible = bar.ts + width if width else xnys_calendar().session_close(bar.ts.date())
            assert visible <= as_of
    contract = OptionContract("SPY", date(2013, 10, 18), 167.0, Right.PUT)
    try:
        option = run(spy2013.option_quote(contract, as_of))
    except Rejected as err:
        assert err.code == "unavailable"
    else:
        assert option.ts <= as_of and option.bid < option.ask


def _assert_matches_reference(last: float, ts: datetime, as_of: datetime) -> None:
    """The quote is the close of the last raw SPY bar whose close is at or before as_of."""
    as_of_us = (as_of - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    visible = np.flatnonzero(as_of_us >= _SPY_TS + 60_000_000)
    if not len(visible):
        return
    i = int(visible[-1])
    same_day = datetime.fromtimestamp(_SPY_TS[i] / 1e6, UTC).astimezone(ET).date()
    if same_day == as_of.astimezone(ET).date():
        assert last == pytest.approx(float(_SPY_CLOSE[i]), abs=1e-9)
        assert ts == datetime.fromtimestamp(_SPY_TS[i] / 1e6 + 60, UTC)


@given(minute=st.integers(min_value=0, max_value=240), pick=st.integers(min_value=0))
def test_goog_option_quotes_are_never_from_the_future(
    goog: ReplayMarketData,
    goog_quotes: pl.DataFrame,
    goog_contracts: list[tuple[date, str, float]],
    minute: int,
    pick: int,
) -> None:
    as_of = et(2015, 12, 24, 9, 30) + timedelta(minutes=minute, seconds=pick % 60)
    expiry, right, strike = goog_contracts[pick % len(goog_contracts)]
    contract = OptionContract("GOOG", expiry, strike, Right.CALL if right == "C" else Right.PUT)
    quote = run(goog.option_quote(contract, as_of))
    assert quote.ts <= as_of
    if quote.source == "recorded":
        row = goog_quotes.filter(
            (pl.col("expiry") == expiry)
            & (pl.col("right") == right)
            & (pl.col("strike") == strike)
            & (pl.col("ts") == quote.ts - timedelta(minutes=1))
        )
        assert quote.bid == pytest.approx(row["bid_close"].item(), abs=1e-9)
        assert quote.ask == pytest.approx(row["ask_close"].item(), abs=1e-9)


@given(st.lists(st.integers(-5, 5), max_size=40), st.booleans())
def test_unique_inverse_is_numpys_unique_with_inverse(values: list[int], ascending: bool) -> None:
    from engine.adapters.replay_store import unique_inverse

    a = np.array(sorted(values) if ascending else values, dtype=np.int64)
    found, index = unique_inverse(a)
    expected, inverse = np.unique(a, return_inverse=True)
    assert found.tolist() == expected.tolist()
    assert index.tolist() == inverse.tolist()
