"""Loopback HTTP servers that speak the market-data vendors' protocols.

`LoopbackServer` serves one fake on 127.0.0.1 at a port the OS picks (bound to port 0),
from a thread, over real HTTP/1.1. The fakes reproduce what the adapters rely on:

- `FakeAlpaca`: Market Data API v2 paths and query parameters, `APCA-API-KEY-ID` /
  `APCA-API-SECRET-KEY` checked (403 `{"message": "forbidden."}` otherwise, as Alpaca's
  market-data FAQ describes), single-letter JSON fields, `next_page_token` pagination,
  `{"code": 4xx..., "message": ...}` error bodies, 429 with `X-RateLimit-*` headers.
- `FakeTwelveData`: `/quote` and `/time_series` with string values newest first and
  `outputsize`, output in the exchange's time zone unless `timezone=UTC`, the key from
  `Authorization: apikey KEY` or `?apikey=`, errors as `{"code", "message", "status":
  "error"}` inside an HTTP 200 (or with the code as HTTP status, `error_http_status`).

Each fake logs every `Call` (with the sim-clock time when given `now`) and serves scripted
`Reply`s first (`fail_next`), which is how tests inject 429s, 5xx and slow answers.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Call:
    """One request as the vendor saw it. Header names are lower case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: datetime | None = None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # real seconds to wait before answering (client timeouts)


class VendorApp(Protocol):
    def handle(self, call: Call) -> Reply: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the default 5 drops concurrent connects (1 s SYN retry)
    app: VendorApp

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One TCP segment per answer: headers and body buffered, flushed once, no Nagle delay.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _Server

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        call = Call(
            method="GET",
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        reply = self.server.app.handle(call)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """Serves `app` on 127.0.0.1 (a free port) from a background thread while entered."""

    def __init__(self, app: VendorApp) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.app = app
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Scripted:
    """Call log and scripted replies shared by the fakes."""

    def __init__(self, now: Callable[[], datetime] | None) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self.calls: list[Call] = []

    def fail_next(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order, before any normal handling."""
        with self._lock:
            self._script.extend(replies)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def _record(self, call: Call) -> tuple[Call, Reply | None]:
        stamped = Call(call.method, call.path, call.query, call.headers, self._stamp())
        with self._lock:
            self.calls.append(stamped)
            return stamped, self._script.popleft() if self._script else None

    def _stamp(self) -> datetime | None:
        return self._now() if self._now is not None else None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))


def _parse_rfc3339(text: str) -> datetime:
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=NEW_YORK)
    return datetime.fromisoformat(text).astimezone(UTC)


# --- Alpaca ----------------------------------------------------------------------------

ALPACA_TIMEFRAMES = {"1Min", "5Min", "15Min", "1Hour", "1Day", "1Week", "1Month"}
ALPACA_STOCK_FEEDS = {"iex", "sip", "delayed_sip", "otc", "boats", "overnight"}
ALPACA_OPTION_FEEDS = {"indicative", "opra"}
_ALPACA_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/v2/stocks/(?P<symbol>[^/]+)/quotes/latest$"), "_latest_quote"),
    (re.compile(r"^/v2/stocks/(?P<symbol>[^/]+)/trades/latest$"), "_latest_trade"),
    (re.compile(r"^/v2/stocks/(?P<symbol>[^/]+)/bars$"), "_bars"),
    (re.compile(r"^/v1beta1/options/snapshots/(?P<symbol>[^/]+)$"), "_snapshots"),
    # no symbol in this path: the group only keeps every handler's (call, name) signature
    (re.compile(r"^/v1beta1/options/quotes/(?P<symbol>latest)$"), "_option_quotes"),
]


class FakeAlpaca(_Scripted):
    """Alpaca Market Data API: stocks v2 latest quote/trade and bars, options v1beta1."""

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        page_size: int = 10_000,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(now)
        self.key_id = key_id
        self.secret_key = secret_key
        self.page_size = page_size
        self.quotes: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self.bars: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.snapshots: dict[str, dict[str, dict[str, Any]]] = {}
        self.option_quotes: dict[str, dict[str, Any]] = {}

    # Replies a test may script.
    @staticmethod
    def rate_limited(reset: datetime) -> Reply:
        headers = {
            "X-RateLimit-Limit": "200",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(reset.timestamp())),
        }
        return Reply(429, {"message": "too many requests."}, headers)

    @staticmethod
    def error(status: int, code: int, message: str) -> Reply:
        return Reply(status, {"code": code, "message": message})

    def handle(self, call: Call) -> Reply:
        call, scripted = self._record(call)
        if scripted is not None:
            return scripted
        if (
            call.headers.get("apca-api-key-id") != self.key_id
            or call.headers.get("apca-api-secret-key") != self.secret_key
        ):
            return Reply(403, {"message": "forbidden."})
        for pattern, handler in _ALPACA_ROUTES:
            match = pattern.match(call.path)
            if match is not None:
                reply: Reply = getattr(self, handler)(call, unquote(match["symbol"]))
                return reply
        return Reply(404, {"message": "Not Found"})

    def _latest_quote(self, call: Call, symbol: str) -> Reply:
        if (call.param("feed") or "iex") not in ALPACA_STOCK_FEEDS:
            return self.error(400, 40010001, "invalid feed")
        if symbol not in self.quotes:
            return self.error(404, 40410000, f"no quote found for {symbol}")
        return Reply(200, {"symbol": symbol, "quote": self.quotes[symbol]})

    def _latest_trade(self, call: Call, symbol: str) -> Reply:
        if (call.param("feed") or "iex") not in ALPACA_STOCK_FEEDS:
            return self.error(400, 40010001, "invalid feed")
        if symbol not in self.trades:
            return self.error(404, 40410000, f"no trade found for {symbol}")
        return Reply(200, {"symbol": symbol, "trade": self.trades[symbol]})

    def _bars(self, call: Call, symbol: str) -> Reply:
        timeframe = call.param("timeframe")
        if timeframe not in ALPACA_TIMEFRAMES:
            return self.error(422, 42210000, "invalid timeframe")
        try:
            start = _parse_rfc3339(call.param("start") or "1970-01-01")
            end = _parse_rfc3339(call.param("end") or "2100-01-01")
            limit = int(call.param("limit") or 1000)
        except ValueError:
            return self.error(422, 42210000, "invalid start, end or limit")
        if not 1 <= limit <= 10_000:
            return self.error(422, 42210000, "invalid limit: must be between 1 and 10000")
        rows = [
            b
            for b in self.bars.get((symbol, timeframe), [])
            if start <= _parse_rfc3339(b["t"]) <= end
        ]
        page, token = self._page(rows, call, limit)
        return Reply(200, {"bars": page or None, "symbol": symbol, "next_page_token": token})

    def _snapshots(self, call: Call, underlying: str) -> Reply:
        if (call.param("feed") or "indicative") not in ALPACA_OPTION_FEEDS:
            return self.error(400, 40010001, "invalid feed")
        limit = int(call.param("limit") or 100)
        if not 1 <= limit <= 1_000:
            return self.error(422, 42210000, "invalid limit: must be between 1 and 1000")
        expiry = call.param("expiration_date")
        rows = sorted(self.snapshots.get(underlying, {}).items())
        if expiry is not None:
            yymmdd = date.fromisoformat(expiry).strftime("%y%m%d")
            rows = [(occ, s) for occ, s in rows if occ[-15:-9] == yymmdd]
        page, token = self._page(rows, call, limit)
        return Reply(200, {"snapshots": dict(page), "next_page_token": token})

    def _option_quotes(self, call: Call, _latest: str) -> Reply:
        symbols = [s for s in (call.param("symbols") or "").split(",") if s]
        if not symbols:
            return self.error(400, 40010001, "no symbol specified")
        found = {s: self.option_quotes[s] for s in symbols if s in self.option_quotes}
        return Reply(200, {"quotes": found})

    def _page(self, rows: list[Any], call: Call, limit: int) -> tuple[list[Any], str | None]:
        offset = _offset(call.param("page_token"))
        size = min(limit, self.page_size)
        more = offset + size < len(rows)
        return rows[offset : offset + size], _token(offset + size) if more else None


# --- TwelveData ------------------------------------------------------------------------

TD_INTERVALS = {"1min", "5min", "15min", "30min", "45min", "1h", "2h", "4h", "1day", "1week"}
TD_BAD_KEY = (
    "**apikey** parameter is incorrect or not specified. You can get your free API key "
    "instantly following this link: https://twelvedata.com/pricing. If you believe that "
    "everything is correct, you can contact us at https://twelvedata.com/contact/customer"
)
TD_NO_DATA = "No data is available on the specified dates. Try setting different start/end dates."
TD_MINUTE_CREDITS = (
    "You have run out of API credits for the current minute. 9 API credits were used, with "
    "the current limit being 8. Wait for the next minute or consider switching to a higher "
    "tier plan at https://twelvedata.com/pricing"
)
TD_DAY_CREDITS = (
    "You have run out of API credits for the day. 801 API credits were used, with the current "
    "limit being 800. Wait for the next day or consider switching to a higher tier plan at "
    "https://twelvedata.com/pricing"
)


@dataclass(frozen=True)
class TdBar:
    """One stored bar: UTC open time and numbers (served as strings)."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


class FakeTwelveData(_Scripted):
    """TwelveData REST: `/quote` and `/time_series` for US stocks."""

    def __init__(
        self,
        api_key: str,
        *,
        error_http_status: bool = False,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(now)
        self.api_key = api_key
        self.error_http_status = error_http_status
        self.quotes: dict[str, dict[str, Any]] = {}
        self.series: dict[tuple[str, str], list[TdBar]] = {}

    def error(self, code: int, message: str) -> Reply:
        body = {"code": code, "message": message, "status": "error"}
        return Reply(code if self.error_http_status else 200, body)

    def handle(self, call: Call) -> Reply:
        call, scripted = self._record(call)
        if scripted is not None:
            return scripted
        header = call.headers.get("authorization", "")
        if header != f"apikey {self.api_key}" and call.param("apikey") != self.api_key:
            return self.error(401, TD_BAD_KEY)
        if call.path == "/quote":
            return self._quote(call)
        if call.path == "/time_series":
            return self._time_series(call)
        return self.error(404, "The requested endpoint does not exist.")

    def _unknown(self, symbol: str) -> Reply:
        return self.error(
            400,
            f"**symbol** not found: {symbol}. Please specify it correctly according to API "
            "Documentation.",
        )

    def _quote(self, call: Call) -> Reply:
        symbol = call.param("symbol")
        if not symbol:
            return self.error(400, "**symbol** parameter is missing or invalid.")
        if symbol not in self.quotes:
            return self._unknown(symbol)
        return Reply(200, self.quotes[symbol])

    def _time_series(self, call: Call) -> Reply:
        symbol, interval = call.param("symbol") or "", call.param("interval") or ""
        if interval not in TD_INTERVALS:
            return self.error(400, "**interval** is invalid. Supported: 1min, 5min, ... 1month")
        if not any(s == symbol for s, _ in self.series):
            return self._unknown(symbol)
        zone = UTC if call.param("timezone") == "UTC" else NEW_YORK
        try:
            start = self._when(call.param("start_date"), zone, datetime.min)
            end = self._when(call.param("end_date"), zone, datetime.max)
            outputsize = int(call.param("outputsize") or 30)
        except ValueError:
            return self.error(400, "**start_date** or **end_date** is invalid.")
        if not 1 <= outputsize <= 5_000:
            return self.error(400, "**outputsize** must be between 1 and 5000.")
        daily = interval == "1day"
        rows = [
            bar
            for bar in self.series.get((symbol, interval), [])
            if start <= self._label(bar, daily, zone) <= end
        ]
        if not rows:
            return self.error(400, TD_NO_DATA)
        newest_first = sorted(rows, key=lambda b: b.ts, reverse=True)[:outputsize]
        values = [self._value(bar, daily, zone) for bar in newest_first]
        meta = {
            "symbol": symbol,
            "interval": interval,
            "currency": "USD",
            "exchange_timezone": "America/New_York",
            "exchange": "NYSE",
            "mic_code": "ARCX",
            "type": "ETF",
        }
        return Reply(200, {"meta": meta, "values": values, "status": "ok"})

    @staticmethod
    def _when(text: str | None, zone: Any, default: datetime) -> datetime:
        if not text:
            return default.replace(tzinfo=UTC)
        fmt = "%Y-%m-%d" if len(text) == 10 else "%Y-%m-%d %H:%M:%S"
        return datetime.strptime(text, fmt).replace(tzinfo=zone)

    @staticmethod
    def _label(bar: TdBar, daily: bool, zone: Any) -> datetime:
        """The bar's time as TwelveData labels it: the session date, or the open time."""
        if daily:
            return datetime.combine(bar.ts.date(), datetime.min.time(), tzinfo=zone)
        return bar.ts.astimezone(zone)

    def _value(self, bar: TdBar, daily: bool, zone: Any) -> dict[str, str]:
        label = self._label(bar, daily, zone)
        return {
            "datetime": label.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S"),
            "open": f"{bar.open:.5f}",
            "high": f"{bar.high:.5f}",
            "low": f"{bar.low:.5f}",
            "close": f"{bar.close:.5f}",
            "volume": str(bar.volume),
        }
