"""`TwelveDataMarketData` against a loopback server speaking TwelveData's REST API.

The only fake is the vendor (`FakeTwelveData`); HTTP is real; waits run on a `SimClock`.
Prices are SPY's real bars (see data/PROVENANCE.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest

from engine.adapters.twelvedata import (
    TWELVEDATA_DAY_LIMIT_ID,
    TWELVEDATA_FREE_LIMITS,
    TWELVEDATA_LIMIT_ID,
    TwelveDataMarketData,
)
from engine.clock import SimClock
from engine.errors import NotFound, Rejected, Retryable
from engine.marketdata import Bar, OptionContract, Quote, Right, Timeframe
from engine.throttle import Throttler
from tests.contract.sim_driver import drive
from tests.contract.vendor_servers import (
    TD_DAY_CREDITS,
    TD_MINUTE_CREDITS,
    Call,
    FakeTwelveData,
    LoopbackServer,
    Reply,
    TdBar,
)

T = TypeVar("T")
API_KEY = "td-0123456789abcdef0123456789abcdef"
T0 = datetime(2013, 10, 4, 14, 0, 20, tzinfo=UTC)  # 20 s past a whole minute

SPY_MINUTES = [
    TdBar(datetime(2013, 10, 4, 13, 30 + i, tzinfo=UTC), o, h, lo, c, v)
    for i, (o, h, lo, c, v) in enumerate(
        [
            (167.74, 167.82, 167.67, 167.77, 633958),
            (167.76, 167.83, 167.73, 167.75, 641236),
            (167.75, 167.77, 167.57, 167.61, 545042),
            (167.61, 167.61, 167.53, 167.56, 344621),
            (167.56, 167.67, 167.53, 167.61, 297287),
        ]
    )
]
SPY_DAYS = [
    TdBar(datetime(2013, 10, d, tzinfo=UTC), o, h, lo, c, v)
    for d, o, h, lo, c, v in [
        (2, 168.34, 169.21, 167.83, 169.11, 87176914),
        (3, 168.77, 168.94, 166.84, 167.62, 153254596),
        (4, 167.74, 169.06, 167.53, 168.89, 84960871),
        (7, 167.43, 168.45, 167.25, 167.42, 81489219),
    ]
]
LAST_QUOTE_AT = int(datetime(2013, 10, 4, 14, 0, 0, tzinfo=UTC).timestamp())


def _seed(fake: FakeTwelveData) -> None:
    fake.quotes["SPY"] = {
        "symbol": "SPY",
        "name": "SPDR S&P 500 ETF Trust",
        "exchange": "NYSE",
        "mic_code": "ARCX",
        "currency": "USD",
        "datetime": "2013-10-04",
        "timestamp": LAST_QUOTE_AT - 60,
        "last_quote_at": LAST_QUOTE_AT,
        "open": "167.74000",
        "high": "168.26000",
        "low": "167.53000",
        "close": "168.22000",
        "volume": "21854302",
        "previous_close": "167.62000",
        "change": "0.60000",
        "percent_change": "0.35795",
        "average_volume": "118433580",
        "is_market_open": True,
        "fifty_two_week": {"low": "135.70000", "high": "173.60000", "range": "135.7 - 173.6"},
    }
    fake.series[("SPY", "1min")] = list(SPY_MINUTES)
    fake.series[("SPY", "1day")] = list(SPY_DAYS)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def fake(clock: SimClock) -> FakeTwelveData:
    fake = FakeTwelveData(API_KEY, now=clock.now)
    _seed(fake)
    return fake


@pytest.fixture
def server_url(fake: FakeTwelveData) -> Iterator[str]:
    with LoopbackServer(fake) as server:
        yield server.url


def _run(
    server_url: str,
    clock: SimClock,
    use: Callable[[TwelveDataMarketData], Awaitable[T]],
    **options: Any,
) -> T:
    async def scenario() -> T:
        settings: dict[str, Any] = {"api_key": API_KEY} | options
        async with TwelveDataMarketData(clock=clock, base_url=server_url, **settings) as adapter:
            return await drive(clock, use(adapter))

    return asyncio.run(scenario())


def _failure(
    server_url: str,
    clock: SimClock,
    use: Callable[[TwelveDataMarketData], Awaitable[Any]],
    **options: Any,
) -> BaseException:
    try:
        _run(server_url, clock, use, **options)
    except Exception as exc:  # the error under test
        return exc
    raise AssertionError("the call succeeded")


def _offsets(calls: list[Call]) -> list[float]:
    return [(c.at - T0).total_seconds() for c in calls if c.at is not None]


def _bar(b: TdBar) -> Bar:
    return Bar("SPY", b.ts, b.open, b.high, b.low, b.close, b.volume)


# --- happy paths ---------------------------------------------------------------------


def test_quote_uses_the_header_key_and_the_last_price(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    quote = _run(server_url, clock, lambda a: a.quote("SPY", T0))
    assert quote == Quote("SPY", datetime(2013, 10, 4, 14, 0, tzinfo=UTC), 168.22, 168.22, 168.22)
    (call,) = fake.calls
    assert call.path == "/quote"
    assert call.headers["authorization"] == f"apikey {API_KEY}"
    assert call.param("apikey") is None  # the key never travels in the URL
    assert call.param("symbol") == "SPY"


def test_minute_bars_page_backwards_from_the_newest(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    start, end = (
        datetime(2013, 10, 4, 13, 30, tzinfo=UTC),
        datetime(2013, 10, 4, 13, 35, tzinfo=UTC),
    )
    bars = _run(
        server_url, clock, lambda a: a.bars("SPY", Timeframe.MINUTE, start, end, T0), page_size=2
    )
    assert bars == [_bar(b) for b in SPY_MINUTES]
    calls = fake.calls_to("/time_series")
    assert [c.param("end_date") for c in calls] == [
        "2013-10-04 13:35:00",
        "2013-10-04 13:32:59",
        "2013-10-04 13:30:59",
    ]
    assert all(c.param("start_date") == "2013-10-04 13:30:00" for c in calls)
    assert all(c.param("timezone") == "UTC" and c.param("interval") == "1min" for c in calls)
    assert all(c.param("outputsize") == "2" for c in calls)


def test_bars_leave_out_what_has_not_closed_by_as_of(server_url: str, clock: SimClock) -> None:
    start, end = (
        datetime(2013, 10, 4, 13, 30, tzinfo=UTC),
        datetime(2013, 10, 4, 13, 35, tzinfo=UTC),
    )
    as_of = datetime(2013, 10, 4, 13, 32, 59, tzinfo=UTC)  # the 13:32 bar closes at 13:33
    bars = _run(server_url, clock, lambda a: a.bars("SPY", Timeframe.MINUTE, start, end, as_of))
    assert [b.ts.minute for b in bars] == [30, 31]


def test_daily_bars_are_stamped_at_the_session_date_and_seen_after_the_close(
    server_url: str, clock: SimClock
) -> None:
    start, end = datetime(2013, 10, 3, tzinfo=UTC), datetime(2013, 10, 8, tzinfo=UTC)
    before_close = datetime(2013, 10, 7, 19, 59, tzinfo=UTC)

    async def both(a: TwelveDataMarketData) -> tuple[list[Bar], list[Bar]]:
        return (
            await a.bars("SPY", Timeframe.DAY, start, end, before_close),
            await a.bars("SPY", Timeframe.DAY, start, end, datetime(2013, 10, 8, tzinfo=UTC)),
        )

    early, late = _run(server_url, clock, both)
    assert early == [_bar(SPY_DAYS[1]), _bar(SPY_DAYS[2])]
    assert late == [_bar(b) for b in SPY_DAYS[1:]]


def test_no_data_in_the_range_is_no_bars(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    start, end = datetime(2013, 10, 5, 13, 30, tzinfo=UTC), datetime(2013, 10, 5, 14, 0, tzinfo=UTC)
    as_of = datetime(2013, 10, 6, tzinfo=UTC)
    bars = _run(server_url, clock, lambda a: a.bars("SPY", Timeframe.MINUTE, start, end, as_of))
    assert bars == []
    assert len(fake.calls) == 1


def test_options_are_unavailable_without_calling_the_vendor(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    contract = OptionContract("SPY", date(2013, 10, 18), 168.0, Right.CALL)
    for use in (
        lambda a: a.option_chain("SPY", None, T0),
        lambda a: a.option_quote(contract, T0),
    ):
        err = _failure(server_url, clock, use)
        assert isinstance(err, Rejected) and err.code == "unavailable"
    assert fake.calls == []


# --- error mapping ----------------------------------------------------------------------


@pytest.mark.parametrize("http_status", [False, True], ids=["error-in-200", "error-as-status"])
def test_wrong_key_is_unauthorized_not_retried_and_not_leaked(
    server_url: str, fake: FakeTwelveData, clock: SimClock, http_status: bool
) -> None:
    fake.error_http_status = http_status
    wrong = "td-wrong-key-9999999999999999999999"
    err = _failure(server_url, clock, lambda a: a.quote("SPY", T0), api_key=wrong)
    assert isinstance(err, Rejected) and err.code == "vendor_unauthorized"
    assert "401" in str(err)
    assert len(fake.calls) == 1
    assert wrong not in str(err)
    adapter = TwelveDataMarketData(api_key=API_KEY, clock=clock)
    assert API_KEY not in repr(adapter)


def test_unknown_symbol_is_not_found(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    err = _failure(server_url, clock, lambda a: a.quote("ZZZZ", T0))
    assert isinstance(err, NotFound) and err.code == "unknown_symbol"
    fake.fail_next(Reply(404, {"code": 404, "message": "Not found", "status": "error"}))
    err = _failure(server_url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, NotFound)
    assert len(fake.calls) == 2


def test_other_bad_requests_are_rejected_once(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    fake.fail_next(
        Reply(200, {"code": 400, "message": "**interval** is invalid.", "status": "error"})
    )
    err = _failure(server_url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, Rejected) and not isinstance(err, NotFound)
    assert err.code == "vendor_rejected"
    assert err.detail == {
        "vendor": "twelvedata",
        "code": 400,
        "message": "**interval** is invalid.",
    }
    assert len(fake.calls) == 1


def test_out_of_minute_credits_waits_for_the_next_minute(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    fake.fail_next(Reply(200, {"code": 429, "message": TD_MINUTE_CREDITS, "status": "error"}))
    quote = _run(server_url, clock, lambda a: a.quote("SPY", T0))
    assert quote.last == 168.22
    assert _offsets(fake.calls) == [0.0, 40.0]  # T0 is hh:mm:20; credits refill at hh:mm+1:00


def test_out_of_daily_credits_is_rejected_at_once(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    fake.fail_next(Reply(200, {"code": 429, "message": TD_DAY_CREDITS, "status": "error"}))
    err = _failure(server_url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, Rejected) and err.code == "vendor_quota_exhausted"
    assert len(fake.calls) == 1


def test_server_errors_twice_then_success_backs_off_one_then_two_seconds(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    fake.fail_next(
        Reply(500, {"code": 500, "message": "Internal error", "status": "error"}),
        Reply(503, None),  # a proxy's empty answer
    )
    quote = _run(server_url, clock, lambda a: a.quote("SPY", T0))
    assert quote.last == 168.22
    assert _offsets(fake.calls) == [0.0, 1.0, 3.0]


def test_server_errors_every_time_give_up_after_the_attempts(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    fake.fail_next(*[Reply(502, None)] * 2)
    err = _failure(server_url, clock, lambda a: a.quote("SPY", T0), attempts=2)
    assert isinstance(err, Retryable)
    assert _offsets(fake.calls) == [0.0, 1.0]


class GrantLog:
    """A `ThrottleObserver` noting the clock time of every grant."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.times: list[datetime] = []

    def on_grant(self, limit_id: str, weight: int, waited_s: float) -> None:
        self.times.append(self.clock.now())

    def on_usage(self, limit_id: str, used: int, limit: int) -> None:
        pass


def test_the_free_plan_throttler_spaces_the_ninth_call_a_minute_later(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    grants = GrantLog(clock)
    throttler = Throttler(TWELVEDATA_FREE_LIMITS, clock, observer=grants)

    async def nine(a: TwelveDataMarketData) -> list[Quote]:
        return list(await asyncio.gather(*(a.quote("SPY", T0) for _ in range(9))))

    quotes = _run(server_url, clock, nine, throttler=throttler)
    assert len(quotes) == 9
    assert len(fake.calls) == 9
    # (the server's stamps are not compared: the driver may move the sim clock while the
    # first eight are still on the wire)
    assert grants.times == [T0] * 8 + [T0 + timedelta(seconds=60)]
    assert throttler.usage(TWELVEDATA_LIMIT_ID) == 1
    assert throttler.usage(TWELVEDATA_DAY_LIMIT_ID) == 9


def test_a_429_pauses_the_throttler_until_the_next_minute(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    throttler = Throttler(TWELVEDATA_FREE_LIMITS, clock)
    fake.fail_next(Reply(429, {"code": 429, "message": TD_MINUTE_CREDITS, "status": "error"}))
    err = _failure(server_url, clock, lambda a: a.quote("SPY", T0), attempts=1, throttler=throttler)
    assert isinstance(err, Retryable) and err.retry_after == 40.0
    assert throttler.paused_until(TWELVEDATA_LIMIT_ID) == T0 + timedelta(seconds=40)


def test_a_non_json_success_is_retried(
    server_url: str, fake: FakeTwelveData, clock: SimClock
) -> None:
    fake.fail_next(Reply(200, None))
    assert _run(server_url, clock, lambda a: a.quote("SPY", T0)).last == 168.22
    assert _offsets(fake.calls) == [0.0, 1.0]
