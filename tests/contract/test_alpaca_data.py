"""`AlpacaMarketData` against a loopback server speaking Alpaca's Market Data API.

The only fake is the vendor (`FakeAlpaca`); HTTP is real. Back-off waits run on a
`SimClock` moved by `drive`, so retries take no real time. Prices are SPY's real bars of
2013-10-04 (see data/PROVENANCE.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest

from engine.adapters.alpaca_data import (
    ALPACA_DATA_LIMITS,
    ALPACA_LIMIT_ID,
    AlpacaMarketData,
    parse_occ,
)
from engine.clock import SimClock
from engine.errors import NotFound, Rejected, Retryable
from engine.marketdata import Bar, OptionContract, Right, Timeframe
from engine.throttle import Throttler
from tests.conftest import free_port
from tests.contract.sim_driver import drive
from tests.contract.vendor_servers import FakeAlpaca, LoopbackServer, Reply

T = TypeVar("T")
KEY_ID = "PKTESTKEYID0123456789"
SECRET = "s3cr3t-alpaca-0123456789abcdefghijklmn"
T0 = datetime(2013, 10, 4, 14, 0, 5, tzinfo=UTC)

# SPY minute bars 13:30-13:35 UTC (09:30-09:35 ET) and daily bars, real values.
SPY_MINUTES = [
    ("13:30", 167.74, 167.82, 167.67, 167.77, 633958),
    ("13:31", 167.76, 167.83, 167.73, 167.75, 641236),
    ("13:32", 167.75, 167.77, 167.57, 167.61, 545042),
    ("13:33", 167.61, 167.61, 167.53, 167.56, 344621),
    ("13:34", 167.56, 167.67, 167.53, 167.61, 297287),
    ("13:35", 167.62, 167.74, 167.61, 167.74, 380700),
]
SPY_DAYS = [
    (date(2013, 10, 2), 168.34, 169.21, 167.83, 169.11, 87176914),
    (date(2013, 10, 3), 168.77, 168.94, 166.84, 167.62, 153254596),
    (date(2013, 10, 4), 167.74, 169.06, 167.53, 168.89, 84960871),
    (date(2013, 10, 7), 167.43, 168.45, 167.25, 167.42, 81489219),
]


def _minute_row(row: tuple[str, float, float, float, float, int]) -> dict[str, Any]:
    hhmm, o, h, lo, c, v = row
    return {"t": f"2013-10-04T{hhmm}:00Z", "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 1200,
            "vw": round((h + lo + c) / 3, 4)}  # fmt: skip


def _day_row(row: tuple[date, float, float, float, float, int]) -> dict[str, Any]:
    d, o, h, lo, c, v = row
    # Alpaca stamps daily bars at New York midnight: 04:00 UTC in October (EDT).
    return {"t": f"{d.isoformat()}T04:00:00Z", "o": o, "h": h, "l": lo, "c": c, "v": v,
            "n": 250000, "vw": c}  # fmt: skip


def _quote(t: str, bid: float, ask: float) -> dict[str, Any]:
    return {"t": t, "ax": "Q", "ap": ask, "as": 3, "bx": "P", "bp": bid, "bs": 5, "c": ["R"],
            "z": "B"}  # fmt: skip


def _snapshot(t: str, bid: float, ask: float, iv: float | None) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "latestQuote": _quote(t, bid, ask),
        "latestTrade": {"t": t, "x": "C", "p": (bid + ask) / 2, "s": 1, "c": ["I"]},
        "greeks": {"delta": 0.5, "gamma": 0.1, "theta": -0.05, "vega": 0.12, "rho": 0.01},
    }
    if iv is not None:
        snap["impliedVolatility"] = iv
    return snap


def _seed(fake: FakeAlpaca) -> None:
    fake.quotes["SPY"] = _quote("2013-10-04T14:00:00.123456789Z", 168.21, 168.23)
    fake.trades["SPY"] = {"t": "2013-10-04T14:00:01.5Z", "x": "V", "p": 168.22, "s": 100,
                          "c": ["@"], "i": 52983525029461, "z": "B"}  # fmt: skip
    fake.bars[("SPY", "1Min")] = [_minute_row(row) for row in SPY_MINUTES]
    fake.bars[("SPY", "1Day")] = [_day_row(row) for row in SPY_DAYS]
    t = "2013-10-04T13:59:58Z"
    fake.snapshots["SPY"] = {
        "SPY131018C00168000": _snapshot(t, 1.95, 2.01, 0.1312),
        "SPY131018P00168000": _snapshot(t, 1.74, 1.79, 0.1405),
        "SPY131018C00170000": _snapshot(t, 0.97, 1.01, None),
        "SPY131025C00168000": _snapshot(t, 2.50, 2.56, 0.1290),
        "SPY1131018C00100000": _snapshot(t, 68.0, 69.0, 0.5),  # adjusted root: left out
        "SPY131018P00150000": {"latestTrade": {"t": t, "x": "C", "p": 0.01, "s": 1}},  # no quote
    }
    fake.option_quotes["SPY131018C00168000"] = _quote("2013-10-04T13:59:59.25Z", 1.96, 2.02)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def fake(clock: SimClock) -> FakeAlpaca:
    fake = FakeAlpaca(KEY_ID, SECRET, now=clock.now)
    _seed(fake)
    return fake


@pytest.fixture
def server(fake: FakeAlpaca) -> Iterator[LoopbackServer]:
    with LoopbackServer(fake) as server:
        yield server


def _run(
    server_url: str,
    clock: SimClock,
    use: Callable[[AlpacaMarketData], Awaitable[T]],
    **options: Any,
) -> T:
    """Build the adapter inside the event loop, run `use` on the sim clock, close it."""

    async def scenario() -> T:
        settings: dict[str, Any] = {"key_id": KEY_ID, "secret_key": SECRET} | options
        async with AlpacaMarketData(clock=clock, base_url=server_url, **settings) as adapter:
            return await drive(clock, use(adapter))

    return asyncio.run(scenario())


def _offsets(calls: list[Any]) -> list[float]:
    return [(c.at - T0).total_seconds() for c in calls]


# --- happy paths ---------------------------------------------------------------------


def test_quote_combines_latest_quote_and_trade(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    quote = _run(server.url, clock, lambda a: a.quote("SPY", T0))
    assert (quote.symbol, quote.bid, quote.ask, quote.last) == ("SPY", 168.21, 168.23, 168.22)
    assert quote.ts == datetime(2013, 10, 4, 14, 0, 1, 500000, tzinfo=UTC)  # the later of both
    paths = [c.path for c in fake.calls]
    assert paths == ["/v2/stocks/SPY/quotes/latest", "/v2/stocks/SPY/trades/latest"]
    for call in fake.calls:
        assert call.headers["apca-api-key-id"] == KEY_ID
        assert call.headers["apca-api-secret-key"] == SECRET
        assert call.param("feed") == "iex"


def test_minute_bars_follow_the_page_token(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.page_size = 2
    start, end = (
        datetime(2013, 10, 4, 13, 30, tzinfo=UTC),
        datetime(2013, 10, 4, 13, 36, tzinfo=UTC),
    )
    bars = _run(server.url, clock, lambda a: a.bars("SPY", Timeframe.MINUTE, start, end, T0))
    assert bars == [
        Bar("SPY", datetime(2013, 10, 4, 13, 30 + i, tzinfo=UTC), o, h, lo, c, v)
        for i, (_, o, h, lo, c, v) in enumerate(SPY_MINUTES)
    ]
    calls = fake.calls_to("/v2/stocks/SPY/bars")
    assert len(calls) == 3
    assert [c.param("page_token") is None for c in calls] == [True, False, False]
    first = calls[0]
    assert first.param("timeframe") == "1Min"
    assert first.param("adjustment") == "raw"
    assert first.param("start") == "2013-10-04T13:30:00Z"


def test_bars_end_is_exclusive_and_nothing_unclosed_is_returned(
    server: LoopbackServer, clock: SimClock
) -> None:
    start, end = (
        datetime(2013, 10, 4, 13, 30, tzinfo=UTC),
        datetime(2013, 10, 4, 13, 35, tzinfo=UTC),
    )
    as_of = datetime(2013, 10, 4, 13, 33, 30, tzinfo=UTC)  # the 13:33 bar closes at 13:34

    async def both(a: AlpacaMarketData) -> tuple[list[Bar], list[Bar]]:
        closed = await a.bars("SPY", Timeframe.MINUTE, start, end, as_of)
        up_to_end = await a.bars("SPY", Timeframe.MINUTE, start, end, T0)
        return closed, up_to_end

    closed, up_to_end = _run(server.url, clock, both)
    assert [b.ts.minute for b in closed] == [30, 31, 32]
    assert [b.ts.minute for b in up_to_end] == [30, 31, 32, 33, 34]


def test_daily_bars_are_stamped_at_the_session_date_and_seen_after_the_close(
    server: LoopbackServer, clock: SimClock
) -> None:
    start, end = datetime(2013, 10, 3, tzinfo=UTC), datetime(2013, 10, 8, tzinfo=UTC)
    before_close = datetime(2013, 10, 7, 19, 59, tzinfo=UTC)  # 15:59 ET
    at_close = datetime(2013, 10, 7, 20, 0, tzinfo=UTC)

    async def both(a: AlpacaMarketData) -> tuple[list[Bar], list[Bar]]:
        return (
            await a.bars("SPY", Timeframe.DAY, start, end, before_close),
            await a.bars("SPY", Timeframe.DAY, start, end, at_close),
        )

    early, late = _run(server.url, clock, both)
    assert [b.ts for b in early] == [
        datetime(2013, 10, 3, tzinfo=UTC),
        datetime(2013, 10, 4, tzinfo=UTC),
    ]
    assert late[-1] == Bar("SPY", datetime(2013, 10, 7, tzinfo=UTC), *SPY_DAYS[3][1:])


def test_option_chain_reads_every_snapshot_page(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.page_size = 2
    chain = _run(server.url, clock, lambda a: a.option_chain("SPY", None, T0))
    assert [q.contract.occ_symbol.replace(" ", "") for q in chain] == [
        "SPY131018C00168000",
        "SPY131018P00168000",
        "SPY131018C00170000",
        "SPY131025C00168000",
    ]
    first = chain[0]
    assert (first.bid, first.ask, first.implied_vol) == (1.95, 2.01, 0.1312)
    assert first.underlying_price == 168.22  # SPY's latest trade
    assert first.source == "alpaca"
    assert first.ts == datetime(2013, 10, 4, 13, 59, 58, tzinfo=UTC)
    assert chain[2].implied_vol is None
    pages = fake.calls_to("/v1beta1/options/snapshots/SPY")
    assert len(pages) == 3
    assert all(c.param("feed") == "indicative" for c in pages)


def test_option_chain_for_one_expiry_asks_the_vendor_to_filter(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    expiry = date(2013, 10, 25)
    chain = _run(server.url, clock, lambda a: a.option_chain("SPY", expiry, T0))
    assert [q.contract for q in chain] == [OptionContract("SPY", expiry, 168.0, Right.CALL)]
    assert fake.calls_to("/v1beta1/options/snapshots/SPY")[0].param("expiration_date") == (
        "2013-10-25"
    )


def test_option_chain_of_an_unknown_underlying_is_empty(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.trades["ZZZZ"] = fake.trades["SPY"]
    assert _run(server.url, clock, lambda a: a.option_chain("ZZZZ", None, T0)) == []


def test_option_quote_sends_the_unpadded_occ_symbol(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    contract = OptionContract("SPY", date(2013, 10, 18), 168.0, Right.CALL)
    quote = _run(server.url, clock, lambda a: a.option_quote(contract, T0))
    assert (quote.contract, quote.bid, quote.ask, quote.underlying_price) == (
        contract,
        1.96,
        2.02,
        168.22,
    )
    assert quote.implied_vol is None
    assert fake.calls_to("/v1beta1/options/quotes/latest")[0].param("symbols") == (
        "SPY131018C00168000"
    )


def test_parse_occ_reads_alpaca_symbols() -> None:
    assert parse_occ("SPY131018P00167500") == OptionContract(
        "SPY", date(2013, 10, 18), 167.5, Right.PUT
    )
    assert parse_occ("AAPL1240119C00150000") is not None  # adjusted root parses ...
    assert parse_occ("not an occ") is None


# --- error mapping ----------------------------------------------------------------------


def _failure(
    server_url: str, clock: SimClock, use: Callable[[AlpacaMarketData], Awaitable[Any]], **kw: Any
) -> BaseException:
    try:
        _run(server_url, clock, use, **kw)
    except Exception as exc:  # the error under test
        return exc
    raise AssertionError("the call succeeded")


def test_wrong_keys_are_unauthorized_not_retried_and_not_leaked(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    wrong_secret = "wrong-secret-abcdefghijklmnopqrstuvwxyz"
    err = _failure(server.url, clock, lambda a: a.quote("SPY", T0), secret_key=wrong_secret)
    assert isinstance(err, Rejected)
    assert err.code == "vendor_unauthorized"
    assert "403" in str(err.detail) and "forbidden" in str(err.detail)
    assert len(fake.calls) == 1
    assert wrong_secret not in str(err) and wrong_secret not in repr(err)
    adapter = AlpacaMarketData(key_id=KEY_ID, secret_key=SECRET, clock=clock)
    assert KEY_ID not in repr(adapter) and SECRET not in repr(adapter)


def test_http_401_is_unauthorized_too(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.fail_next(Reply(401, {"message": "unauthorized."}))
    err = _failure(server.url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, Rejected) and err.code == "vendor_unauthorized"
    assert len(fake.calls) == 1


def test_unknown_symbol_is_not_found(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    err = _failure(server.url, clock, lambda a: a.quote("ZZZZ", T0))
    assert isinstance(err, NotFound)
    assert err.code == "unknown_symbol"
    assert len(fake.calls) == 1


def test_unknown_contract_is_not_found(server: LoopbackServer, clock: SimClock) -> None:
    contract = OptionContract("SPY", date(2013, 10, 18), 999.0, Right.CALL)
    err = _failure(server.url, clock, lambda a: a.option_quote(contract, T0))
    assert isinstance(err, NotFound) and err.code == "unknown_contract"


def test_unprocessable_request_is_rejected_with_the_vendor_code(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.fail_next(FakeAlpaca.error(422, 42210000, "invalid timeframe"))
    start = datetime(2013, 10, 4, 13, 30, tzinfo=UTC)
    err = _failure(
        server.url, clock, lambda a: a.bars("SPY", Timeframe.MINUTE, start, T0, T0), attempts=5
    )
    assert isinstance(err, Rejected) and not isinstance(err, NotFound)
    assert err.code == "vendor_rejected"
    assert err.detail == {
        "vendor": "alpaca",
        "status": 422,
        "code": 42210000,
        "message": "invalid timeframe",
    }
    assert len(fake.calls) == 1


def test_429_then_5xx_then_success_waits_for_the_reset_then_backs_off(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    reset = T0 + timedelta(seconds=7)
    fake.fail_next(FakeAlpaca.rate_limited(reset), Reply(502, {"message": "bad gateway"}))
    quote = _run(server.url, clock, lambda a: a.quote("SPY", T0 + timedelta(seconds=60)))
    assert quote.bid == 168.21
    # 429: wait until X-RateLimit-Reset (7 s > the 1 s back-off); 502: back off 2 s.
    assert _offsets(fake.calls) == [0.0, 7.0, 9.0, 9.0]
    assert clock.now() == T0 + timedelta(seconds=9)


def test_5xx_every_time_gives_up_after_the_attempts(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.fail_next(*[Reply(503, {"message": "service unavailable"})] * 3)
    err = _failure(server.url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, Retryable)
    assert "503" in str(err)
    assert _offsets(fake.calls) == [0.0, 1.0, 3.0]


def test_a_429_pauses_the_throttler_until_the_reset(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    throttler = Throttler(ALPACA_DATA_LIMITS, clock)
    reset = T0 + timedelta(seconds=42)
    fake.fail_next(FakeAlpaca.rate_limited(reset))
    err = _failure(server.url, clock, lambda a: a.quote("SPY", T0), attempts=1, throttler=throttler)
    assert isinstance(err, Retryable) and err.retry_after == 42.0
    assert throttler.paused_until(ALPACA_LIMIT_ID) == reset
    assert throttler.usage(ALPACA_LIMIT_ID) == 1


def test_a_timeout_is_retried(server: LoopbackServer, fake: FakeAlpaca, clock: SimClock) -> None:
    fake.fail_next(Reply(200, {"symbol": "SPY", "quote": {}}, delay_s=0.5))
    quote = _run(server.url, clock, lambda a: a.quote("SPY", T0), timeout_s=0.05)
    assert quote.ask == 168.23
    assert _offsets(fake.calls) == [0.0, 1.0, 1.0]


def test_connection_refused_is_retryable(clock: SimClock) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = _failure(url, clock, lambda a: a.quote("SPY", T0), attempts=2)
    assert isinstance(err, Retryable)
    assert "ConnectError" in str(err)
    assert clock.now() == T0 + timedelta(seconds=1)
    assert SECRET not in str(err) and KEY_ID not in str(err)


def test_a_malformed_answer_is_a_bad_answer(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.fail_next(Reply(200, {"symbol": "SPY", "quote": {"t": "2013-10-04T14:00:00Z"}}))
    err = _failure(server.url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, Rejected) and err.code == "vendor_bad_answer"
    assert len(fake.calls) == 1


def test_a_vendor_message_echoing_the_key_is_redacted(
    server: LoopbackServer, fake: FakeAlpaca, clock: SimClock
) -> None:
    fake.fail_next(FakeAlpaca.error(400, 40010001, f"bad request for key {KEY_ID}"))
    err = _failure(server.url, clock, lambda a: a.quote("SPY", T0))
    assert isinstance(err, Rejected)
    assert KEY_ID not in str(err)
    assert "***" in str(err)


def test_a_latest_quote_stamped_after_as_of_is_refused(
    server: LoopbackServer, clock: SimClock
) -> None:
    past = datetime(2013, 10, 4, 13, 0, tzinfo=UTC)
    err = _failure(server.url, clock, lambda a: a.quote("SPY", past))
    assert isinstance(err, Rejected) and err.code == "unavailable"
