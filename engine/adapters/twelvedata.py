"""TwelveData REST behind `MarketDataPort` (stocks only: no options on the free plan).

Endpoints used, relative to the base URL:

- `GET /quote?symbol&timezone=UTC`: one object of strings (`close`, `previous_close`, …)
  with unix `timestamp` and, on newer answers, `last_quote_at`. It carries no bid or ask,
  so `Quote.bid` and `Quote.ask` are the last price (a zero spread);
- `GET /time_series?symbol&interval=1min|1day&start_date&end_date&timezone=UTC&outputsize`:
  `{"meta": {...}, "values": [{"datetime", "open", "high", "low", "close", "volume"}],
  "status": "ok"}`, values as strings, newest first, at most `outputsize` (5000) of them:
  a full page is followed by another one ending just before its oldest value.

Authentication: the `Authorization: apikey KEY` header rather than the `apikey` query
parameter, so the key never appears in a URL (URLs end up in logs).

Errors come inside the JSON body, `{"code": 429, "message": ..., "status": "error"}`,
often with HTTP 200: 429 → `Retryable` until the next minute, when TwelveData refills
the minute's credits (the daily quota → `Rejected("vendor_quota_exhausted")`);
401/403 → `Rejected("vendor_unauthorized")`; 404 or "symbol not found" →
`NotFound("unknown_symbol")`; "No data is available on the specified dates" → no bars;
other 4xx → `Rejected("vendor_rejected")`; 408, 5xx, timeouts and connection errors →
`Retryable`. Option methods raise `Rejected("unavailable")`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from engine.adapters.vendor_http import VendorClient, VendorHttp, VendorReply, vendor_answer
from engine.adapters.vendor_time import bar_visible_at, session_ts
from engine.clock import Clock, ensure_utc
from engine.errors import NotFound, Rejected, Retryable
from engine.marketdata import Bar, OptionContract, OptionQuote, Quote, Timeframe
from engine.retry import RetryHook
from engine.throttle import LinkedLimit, RateLimit, Throttler

TWELVEDATA_URL = "https://api.twelvedata.com"
TWELVEDATA_LIMIT_ID = "twelvedata"
TWELVEDATA_DAY_LIMIT_ID = "twelvedata_day"
# The free ("Basic") plan: 8 credits a minute and 800 a day; every call here costs 1.
TWELVEDATA_FREE_LIMITS = (
    RateLimit(TWELVEDATA_LIMIT_ID, 8, 60.0, linked=(LinkedLimit(TWELVEDATA_DAY_LIMIT_ID),)),
    RateLimit(TWELVEDATA_DAY_LIMIT_ID, 800, 86_400.0),
)

_INTERVALS = {Timeframe.MINUTE: "1min", Timeframe.DAY: "1day"}
_MAX_OUTPUTSIZE = 5_000
_MAX_PAGES = 1_000
_NO_DATA = "no_data"
_DATE_TIME = "%Y-%m-%d %H:%M:%S"


class TwelveDataMarketData(VendorClient):
    """`MarketDataPort` over TwelveData's REST API (see the module docstring)."""

    name = "twelvedata"

    def __init__(
        self,
        *,
        api_key: str,
        clock: Clock,
        base_url: str = TWELVEDATA_URL,
        timeout_s: float = 10.0,
        attempts: int = 3,
        page_size: int = _MAX_OUTPUTSIZE,
        latest_tolerance_s: float = 5.0,
        throttler: Throttler | None = None,
        on_retry: RetryHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 1 <= page_size <= _MAX_OUTPUTSIZE:
            raise ValueError(f"page_size must be in [1, {_MAX_OUTPUTSIZE}]")
        self._clock = clock
        self._page_size = page_size
        self._tolerance = timedelta(seconds=latest_tolerance_s)
        self._http = VendorHttp(
            vendor=self.name,
            base_url=base_url,
            headers={"Authorization": f"apikey {api_key}"},
            secrets=(api_key,),
            clock=clock,
            timeout_s=timeout_s,
            attempts=attempts,
            throttler=throttler,
            limit_id=TWELVEDATA_LIMIT_ID if throttler is not None else None,
            on_retry=on_retry,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"TwelveDataMarketData(base_url={self._http.base_url!r})"

    async def quote(self, symbol: str, as_of: datetime) -> Quote:
        """Last price of `symbol`; bid and ask equal it (TwelveData gives no NBBO)."""
        as_of = ensure_utc(as_of)
        params = {"symbol": symbol, "timezone": "UTC"}
        body = await self._http.get_json("/quote", params, self._check)
        with vendor_answer(self.name, "quote"):
            last = float(body["close"])
            stamp = body.get("last_quote_at") or body["timestamp"]
            ts = datetime.fromtimestamp(int(stamp), UTC)
        if ts > as_of + self._tolerance:
            raise Rejected(
                "unavailable",
                f"twelvedata quote of {symbol} is stamped {ts.isoformat()}, "
                f"after as_of {as_of.isoformat()}",
            )
        return Quote(symbol=symbol, ts=ts, last=last, bid=last, ask=last)

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        """Bars stamped in `[start, end)` and closed by `as_of`, in time order."""
        start, end, as_of = ensure_utc(start), ensure_utc(end), ensure_utc(as_of)
        stop = min(end, as_of)
        if stop <= start:
            return []
        # Daily values are labelled by date: ask a day wider and filter on our stamps.
        pad = timedelta(days=1) if timeframe is Timeframe.DAY else timedelta(0)
        found = await self._series(symbol, timeframe, start - pad, stop + pad)
        return sorted(
            (b for b in found if start <= b.ts < end and bar_visible_at(b.ts, timeframe) <= as_of),
            key=lambda b: b.ts,
        )

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]:
        """Always `Rejected("unavailable")`: TwelveData's free plan has no options data."""
        raise Rejected("unavailable", "twelvedata has no options data on the free plan")

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        """Always `Rejected("unavailable")`: TwelveData's free plan has no options data."""
        raise Rejected("unavailable", "twelvedata has no options data on the free plan")

    async def _series(
        self, symbol: str, timeframe: Timeframe, low: datetime, high: datetime
    ) -> list[Bar]:
        """Every value in `[low, high]`, page by page from the newest backwards."""
        params = {
            "symbol": symbol,
            "interval": _INTERVALS[timeframe],
            "timezone": "UTC",
            "outputsize": str(self._page_size),
            "start_date": low.strftime(_DATE_TIME),
        }
        bars: dict[datetime, Bar] = {}
        upper = high
        for _ in range(_MAX_PAGES):
            page = await self._page(params | {"end_date": upper.strftime(_DATE_TIME)})
            with vendor_answer(self.name, "time series"):
                page_bars = [_bar(symbol, row, timeframe) for row in page]
            bars.update((b.ts, b) for b in page_bars)
            if len(page) < self._page_size:
                return list(bars.values())
            upper = min(b.ts for b in page_bars) - timedelta(seconds=1)
            if upper < low:
                return list(bars.values())
        raise Rejected("vendor_bad_answer", f"twelvedata: more than {_MAX_PAGES} pages")

    async def _page(self, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            body = await self._http.get_json("/time_series", params, self._check)
        except Rejected as exc:
            if exc.code == _NO_DATA:
                return []
            raise
        with vendor_answer(self.name, "time series"):
            values: list[dict[str, Any]] = body["values"] or []
        return values

    def _check(self, reply: VendorReply) -> None:
        """Map a TwelveData answer to our errors: the body's code first, else the HTTP status."""
        body = reply.body if isinstance(reply.body, dict) else None
        if body is not None and body.get("status") == "error":
            try:
                code = int(body.get("code", reply.status))
            except (TypeError, ValueError):
                code = reply.status
            self._raise_for(code, str(body.get("message", "")))
        if reply.status >= 400:
            self._raise_for(reply.status, "")
        if body is None:
            raise Retryable(f"twelvedata: {reply.status} answer is not a JSON object")

    def _raise_for(self, code: int, message: str) -> None:
        if code == 429:
            if "for the day" in message:
                raise Rejected("vendor_quota_exhausted", f"twelvedata: {message}")
            raise Retryable(f"twelvedata: {message}", retry_after=self._to_next_minute())
        if code in (401, 403):
            raise Rejected("vendor_unauthorized", f"twelvedata {code}: {message}")
        if code == 400 and message.startswith("No data is available"):
            raise Rejected(_NO_DATA, message)
        if code == 404 or (code == 400 and "not found" in message.lower()):
            raise NotFound("unknown_symbol", f"twelvedata: {message}")
        if code == 408 or code >= 500:
            raise Retryable(f"twelvedata {code}: {message}")
        raise Rejected(
            "vendor_rejected", {"vendor": "twelvedata", "code": code, "message": message}
        )

    def _to_next_minute(self) -> float:
        """Seconds from our clock's now to the next whole minute, when credits refill."""
        now = self._clock.now()
        return (now.replace(second=0, microsecond=0) + timedelta(minutes=1) - now).total_seconds()


def _bar(symbol: str, row: dict[str, Any], timeframe: Timeframe) -> Bar:
    stamp = str(row["datetime"])
    if timeframe is Timeframe.DAY:
        ts = session_ts(date.fromisoformat(stamp[:10]))
    else:
        ts = datetime.strptime(stamp, _DATE_TIME).replace(tzinfo=UTC)
    return Bar(
        symbol=symbol,
        ts=ts,
        open=float(row["open"]),
        high=float(row["high"]),
        low=float(row["low"]),
        close=float(row["close"]),
        volume=int(float(row.get("volume") or 0)),
    )
