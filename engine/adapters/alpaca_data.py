"""Alpaca Market Data (stocks v2, options v1beta1) behind `MarketDataPort`.

Endpoints used, relative to the base URL:

- `GET /v2/stocks/{symbol}/quotes/latest` and `/trades/latest`: `{"symbol", "quote": {t,
  ax, ap, as, bx, bp, bs, c, z}}` and `{"symbol", "trade": {t, x, p, s, c, i, z}}`;
- `GET /v2/stocks/{symbol}/bars?timeframe=1Min|1Day&start&end&limit&page_token`:
  `{"bars": [{t, o, h, l, c, v, n, vw}] | null, "symbol", "next_page_token"}`;
- `GET /v1beta1/options/snapshots/{underlying}?expiration_date&limit&page_token`:
  `{"snapshots": {OCC: {latestQuote, latestTrade, greeks, impliedVolatility}},
  "next_page_token"}`;
- `GET /v1beta1/options/quotes/latest?symbols=OCC`: `{"quotes": {OCC: {t, ap, bp, ...}}}`.

Authentication: the `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` headers.

Errors: 429 → `Retryable`, `retry_after` from `X-RateLimit-Reset` (unix seconds) against
our clock; 401/403 → `Rejected("vendor_unauthorized")`; 404 → `NotFound("unknown_symbol")`;
other 4xx (e.g. 422 `{"code": 42210000, "message": ...}`) → `Rejected("vendor_rejected")`;
408, 5xx, timeouts and connection errors → `Retryable`.

Why `Rejected` and not `Fatal` for 401/403: Alpaca answers 403 both for bad keys and for
one request the plan does not cover ("subscription does not permit querying recent SIP
data"); both are a definitive no for this call that a caller may answer by falling back
to another vendor, which an actor-stopping `Fatal` would prevent. Not `Unauthorized` /
`Forbidden` either: their HTTP status would tell *our* API client it is unauthenticated.

Latest-value endpoints answer "now". A value stamped later than `as_of` plus
`latest_tolerance_s` (quotes that change during the request round trip) is refused with
`Rejected("unavailable")`: this adapter cannot answer for the past.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote as url_quote

import httpx

from engine.adapters.vendor_http import VendorClient, VendorHttp, VendorReply, vendor_answer
from engine.adapters.vendor_time import (
    NEW_YORK,
    bar_visible_at,
    parse_utc,
    rfc3339,
    session_ts,
)
from engine.clock import Clock, ensure_utc
from engine.errors import NotFound, Rejected, Retryable
from engine.marketdata import Bar, OptionContract, OptionQuote, Quote, Right, Timeframe
from engine.retry import RetryHook
from engine.throttle import RateLimit, Throttler

ALPACA_DATA_URL = "https://data.alpaca.markets"
ALPACA_LIMIT_ID = "alpaca_data"
# The free plan's 200 requests per minute, for a `Throttler`.
ALPACA_DATA_LIMITS = (RateLimit(ALPACA_LIMIT_ID, 200, 60.0),)

_TIMEFRAMES = {Timeframe.MINUTE: "1Min", Timeframe.DAY: "1Day"}
_BAR_PAGE = 10_000
_OPTION_PAGE = 1_000
_MAX_PAGES = 1_000
_OCC = re.compile(r"^(?P<root>[A-Z0-9]{1,6})(?P<ymd>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


class AlpacaMarketData(VendorClient):
    """`MarketDataPort` over Alpaca's market-data REST API (see the module docstring)."""

    name = "alpaca"

    def __init__(
        self,
        *,
        key_id: str,
        secret_key: str,
        clock: Clock,
        base_url: str = ALPACA_DATA_URL,
        timeout_s: float = 10.0,
        attempts: int = 3,
        feed: str = "iex",
        option_feed: str = "indicative",
        latest_tolerance_s: float = 5.0,
        throttler: Throttler | None = None,
        on_retry: RetryHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._clock = clock
        self._feed = feed
        self._option_feed = option_feed
        self._tolerance = timedelta(seconds=latest_tolerance_s)
        self._http = VendorHttp(
            vendor=self.name,
            base_url=base_url,
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key},
            secrets=(key_id, secret_key),
            clock=clock,
            timeout_s=timeout_s,
            attempts=attempts,
            throttler=throttler,
            limit_id=ALPACA_LIMIT_ID if throttler is not None else None,
            on_retry=on_retry,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AlpacaMarketData(base_url={self._http.base_url!r}, feed={self._feed!r})"

    async def quote(self, symbol: str, as_of: datetime) -> Quote:
        """Latest NBBO (on the configured feed) and latest trade of `symbol`."""
        as_of = ensure_utc(as_of)
        path = f"/v2/stocks/{_path(symbol)}/quotes/latest"
        body = await self._http.get_json(path, {"feed": self._feed}, self._check)
        with vendor_answer(self.name, "latest quote"):
            raw = body["quote"]
            quote_ts, bid, ask = parse_utc(raw["t"]), float(raw["bp"]), float(raw["ap"])
        trade_ts, last = await self._latest_trade(symbol)
        ts = max(quote_ts, trade_ts)
        self._not_after(ts, as_of, f"latest quote of {symbol}")
        return Quote(symbol=symbol, ts=ts, last=last, bid=bid, ask=ask)

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        """Raw (unadjusted) bars stamped in `[start, end)` and closed by `as_of`, in time order."""
        start, end, as_of = ensure_utc(start), ensure_utc(end), ensure_utc(as_of)
        stop = min(end, as_of)
        if stop <= start:
            return []
        # Alpaca stamps a daily bar at New York midnight (04:00/05:00 UTC), we at 00:00 UTC:
        # ask a day wider and filter on our stamps.
        pad = timedelta(days=1) if timeframe is Timeframe.DAY else timedelta(0)
        params = {
            "timeframe": _TIMEFRAMES[timeframe],
            "start": rfc3339(start - pad),
            "end": rfc3339(stop + pad),
            "limit": str(_BAR_PAGE),
            "adjustment": "raw",
            "feed": self._feed,
            "sort": "asc",
        }
        pages = await self._pages(f"/v2/stocks/{_path(symbol)}/bars", params)
        with vendor_answer(self.name, "bars"):
            bars = [_bar(symbol, row, timeframe) for page in pages for row in page["bars"] or ()]
        return sorted(
            (b for b in bars if start <= b.ts < end and bar_visible_at(b.ts, timeframe) <= as_of),
            key=lambda b: b.ts,
        )

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]:
        """Every standard contract of `underlying` (one expiry, or all) with a latest quote.

        Adjusted contracts (root other than the underlying, e.g. `AAPL1`) are left out: their
        deliverable is not 100 shares of the underlying.
        """
        as_of = ensure_utc(as_of)
        params = {"feed": self._option_feed, "limit": str(_OPTION_PAGE)}
        if expiry is not None:
            params["expiration_date"] = expiry.isoformat()
        pages = await self._pages(f"/v1beta1/options/snapshots/{_path(underlying)}", params)
        _, spot = await self._latest_trade(underlying)
        chain: list[OptionQuote] = []
        with vendor_answer(self.name, "option snapshots"):
            for page in pages:
                for occ, snapshot in (page["snapshots"] or {}).items():
                    quote = self._snapshot_quote(underlying, occ, snapshot, spot)
                    if quote is not None and quote.ts <= as_of + self._tolerance:
                        chain.append(quote)
        if expiry is not None:
            chain = [q for q in chain if q.contract.expiry == expiry]
        return sorted(chain, key=lambda q: (q.contract.expiry, q.contract.strike, q.contract.right))

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        """Latest quote of one contract (no implied volatility on this endpoint)."""
        as_of = ensure_utc(as_of)
        occ = contract.occ_symbol.replace(" ", "")
        params = {"symbols": occ, "feed": self._option_feed}
        body = await self._http.get_json("/v1beta1/options/quotes/latest", params, self._check)
        with vendor_answer(self.name, "latest option quote"):
            raw = (body["quotes"] or {}).get(occ)
        if raw is None:
            raise NotFound("unknown_contract", f"alpaca has no quote for {occ}")
        with vendor_answer(self.name, "latest option quote"):
            ts, bid, ask = parse_utc(raw["t"]), float(raw["bp"]), float(raw["ap"])
        self._not_after(ts, as_of, f"latest quote of {occ}")
        _, spot = await self._latest_trade(contract.underlying)
        return OptionQuote(contract, ts, bid, ask, None, spot, self.name)

    async def _latest_trade(self, symbol: str) -> tuple[datetime, float]:
        path = f"/v2/stocks/{_path(symbol)}/trades/latest"
        body = await self._http.get_json(path, {"feed": self._feed}, self._check)
        with vendor_answer(self.name, "latest trade"):
            return parse_utc(body["trade"]["t"]), float(body["trade"]["p"])

    async def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every page of a paginated answer, following `next_page_token`."""
        pages: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page_params = params if token is None else {**params, "page_token": token}
            body = await self._http.get_json(path, page_params, self._check)
            pages.append(body)
            token = body.get("next_page_token")
            if not token:
                return pages
            if len(pages) >= _MAX_PAGES:
                raise Rejected("vendor_bad_answer", f"alpaca {path}: more than {_MAX_PAGES} pages")

    def _snapshot_quote(
        self, underlying: str, occ: str, snapshot: dict[str, Any], spot: float
    ) -> OptionQuote | None:
        contract = parse_occ(occ)
        raw = snapshot.get("latestQuote")
        if contract is None or contract.underlying != underlying.upper() or not raw:
            return None
        iv = snapshot.get("impliedVolatility")
        return OptionQuote(
            contract=contract,
            ts=parse_utc(raw["t"]),
            bid=float(raw["bp"]),
            ask=float(raw["ap"]),
            implied_vol=float(iv) if iv is not None else None,
            underlying_price=spot,
            source=self.name,
        )

    def _not_after(self, ts: datetime, as_of: datetime, what: str) -> None:
        if ts > as_of + self._tolerance:
            raise Rejected(
                "unavailable",
                f"alpaca {what} is stamped {ts.isoformat()}, after as_of {as_of.isoformat()}",
            )

    def _check(self, reply: VendorReply) -> None:
        """Map an Alpaca answer to our errors (see the module docstring)."""
        status = reply.status
        if 200 <= status < 300:
            if not isinstance(reply.body, dict):
                raise Retryable(f"alpaca: {status} answer is not a JSON object")
            return
        body = reply.body if isinstance(reply.body, dict) else {}
        message = str(body.get("message", ""))
        if status == 429:
            retry_after = self._reset_in(reply.headers)
            raise Retryable(f"alpaca: rate limited: {message}", retry_after=retry_after)
        if status in (401, 403):
            raise Rejected("vendor_unauthorized", f"alpaca {status}: {message}")
        if status == 404:
            raise NotFound("unknown_symbol", f"alpaca: {message}")
        if status == 408 or status >= 500:
            raise Retryable(f"alpaca {status}: {message}")
        raise Rejected(
            "vendor_rejected",
            {"vendor": "alpaca", "status": status, "code": body.get("code"), "message": message},
        )

    def _reset_in(self, headers: httpx.Headers) -> float | None:
        """Seconds from our clock's now to `X-RateLimit-Reset` (unix seconds), if given."""
        try:
            reset = float(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            return None
        return max(0.0, reset - self._clock.now().timestamp())


def parse_occ(occ: str) -> OptionContract | None:
    """An OCC symbol without padding (`SPY131018C00168000`) as a contract, or None."""
    match = _OCC.match(occ)
    if match is None:
        return None
    ymd = match["ymd"]
    return OptionContract(
        underlying=match["root"],
        expiry=date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])),
        strike=int(match["strike"]) / 1000.0,
        right=Right.CALL if match["right"] == "C" else Right.PUT,
    )


def _bar(symbol: str, row: dict[str, Any], timeframe: Timeframe) -> Bar:
    t = parse_utc(row["t"])
    ts = session_ts(t.astimezone(NEW_YORK).date()) if timeframe is Timeframe.DAY else t
    return Bar(
        symbol=symbol,
        ts=ts,
        open=float(row["o"]),
        high=float(row["h"]),
        low=float(row["l"]),
        close=float(row["c"]),
        volume=int(row["v"]),
    )


def _path(symbol: str) -> str:
    return url_quote(symbol, safe="")
