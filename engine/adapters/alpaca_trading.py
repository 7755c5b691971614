"""Alpaca's Trading API (v2) behind the broker port (`engine.broker.Broker`).

Endpoints, relative to the base URL (paper `https://paper-api.alpaca.markets` unless the
live endpoint is chosen explicitly, see `alpaca_endpoints`):

- `POST /v2/orders` `{symbol, qty, side, type, time_in_force, client_order_id,
  limit_price?}` → the order object; options use the OCC symbol without spaces;
- `GET /v2/orders:by_client_order_id?client_order_id=` → the order, 404 when unknown;
- `DELETE /v2/orders/{id}` → 204 (422 when the order can no longer be cancelled);
- `GET /v2/orders?status=open&limit=500&direction=asc` (paged with `after`);
- `GET /v2/positions`, `GET /v2/account`.

Authentication: the `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` headers. Numbers in
Alpaca's JSON are strings (`"qty": "5"`, `"filled_avg_price": "167.52"`).

What a failure becomes (`engine.broker` says what the tracker does with each):

- 403 / 422 with Alpaca's `{"code", "message"}`: `Rejected` with a code read from the
  message: `insufficient_buying_power`, `insufficient_quantity`, `not_tradable`,
  `market_closed`, `broker_unauthorized` (401, or 403 "forbidden."), else
  `broker_rejected`; the detail keeps Alpaca's status, code and message. Never retried.
- 429, 408 and 5xx: retried with back-off (`engine.retry.backoff_delay`, waits through
  the injected `sleep`; a 429's `Retry-After` or `X-RateLimit-Reset` wins when longer),
  then `Retryable`. A submit that ends on a 5xx raises `Ambiguous` instead: Alpaca may
  have taken the order and failed the answer, so the tracker must look it up.
- A connection refused or a connect timeout (nothing was sent): retried, then
  `Retryable`. A read timeout or a connection dropped after the request went out:
  `Ambiguous` for a submit (never re-sent blindly), retried for the other calls.
- A retried submit answered 422 "client_order_id must be unique": the first attempt
  reached Alpaca; the order is looked up and returned.
- A malformed answer: `Ambiguous` for a submit, `Retryable` otherwise.

The keys live only in the client's headers: no message, repr or exception carries them
(`from None` drops httpx errors, which hold the request and so the headers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from engine.adapters.alpaca_data import parse_occ
from engine.adapters.vendor_time import parse_utc
from engine.broker import Ambiguous, BrokerOrder, BrokerPosition, BrokerStatus
from engine.errors import Fatal, Rejected, Retryable
from engine.orders import PlannedOrder
from engine.retry import backoff_delay
from engine.settings import ENV_PREFIX, Settings

ALPACA_PAPER_URL = "https://paper-api.alpaca.markets"
ALPACA_LIVE_URL = "https://api.alpaca.markets"
ALPACA_PAPER_STREAM_URL = "wss://paper-api.alpaca.markets/stream"
ALPACA_LIVE_STREAM_URL = "wss://api.alpaca.markets/stream"

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Now = Callable[[], Awaitable[datetime]]

_PAGE = 500  # Alpaca's largest `limit` for GET /v2/orders
_MAX_PAGES = 100
_REDACTED = "***"
_DUPLICATE = re.compile(r"client[\s_-]?order[\s_-]?id must be unique", re.IGNORECASE)
_MARKET_CLOSED = re.compile(r"market (is )?closed|market hours|outside .*hours", re.IGNORECASE)
_NOT_TRADABLE = re.compile(
    r"not tradable|not active|not found|not allowed|cannot be traded|halted", re.IGNORECASE
)
# Nothing reached Alpaca: safe to send again.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)

_SAME_STATUS: Mapping[str, BrokerStatus] = {
    "new": "new",
    "accepted": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
    "replaced": "canceled",  # we never replace: another order now stands for it
}
# Alive at Alpaca but in none of our broker statuses: open, with whatever has filled.
_STILL_OPEN = frozenset(
    {
        "pending_new",
        "accepted_for_bidding",
        "pending_cancel",
        "pending_replace",
        "done_for_day",
        "stopped",
        "suspended",
        "calculated",
        "held",
    }
)
_FINAL_REASON = frozenset({"canceled", "expired", "rejected", "replaced"})


@dataclass(frozen=True, slots=True)
class AlpacaEndpoints:
    trading_url: str
    stream_url: str
    live: bool


def alpaca_endpoints(
    live: bool, trading_url: str | None = None, stream_url: str | None = None
) -> AlpacaEndpoints:
    """Alpaca's paper endpoints unless `live`; explicit URLs (a test's loopback) win."""
    rest = ALPACA_LIVE_URL if live else ALPACA_PAPER_URL
    stream = ALPACA_LIVE_STREAM_URL if live else ALPACA_PAPER_STREAM_URL
    return AlpacaEndpoints(trading_url or rest, stream_url or stream, live)


@dataclass(frozen=True)
class AlpacaAccess:
    """Where and as whom to trade at Alpaca. The keys never show in its repr."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    endpoints: AlpacaEndpoints


def alpaca_access(settings: Settings) -> AlpacaAccess:
    """The Alpaca keys and endpoints from settings; `Fatal` naming what is missing."""
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in ("alpaca_key_id", "alpaca_secret_key")
        if getattr(settings, name) is None
    ]
    if missing or settings.alpaca_key_id is None or settings.alpaca_secret_key is None:
        raise Fatal(f"Alpaca trading needs {', '.join(missing)}", "see .env.example")
    endpoints = alpaca_endpoints(
        settings.alpaca_live, settings.alpaca_trading_url, settings.alpaca_stream_url
    )
    return AlpacaAccess(
        settings.alpaca_key_id.get_secret_value(),
        settings.alpaca_secret_key.get_secret_value(),
        endpoints,
    )


@dataclass(frozen=True, slots=True)
class AlpacaAccount:
    account_number: str
    status: str
    currency: str
    buying_power: float
    equity: float
    cash: float


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: Any

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""


class AlpacaBroker:
    """The broker port over Alpaca's Trading API (see the module docstring)."""

    name = "alpaca"

    def __init__(
        self,
        *,
        key_id: str,
        secret_key: str,
        sleep: Sleep,
        base_url: str = ALPACA_PAPER_URL,
        now: Now | None = None,
        timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        page_size: int = _PAGE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if attempts < 1 or not 1 <= page_size <= _PAGE:
            raise ValueError(
                f"attempts >= 1 and page_size in 1..{_PAGE}, got {attempts}, {page_size}"
            )
        self._secrets = tuple(s for s in (key_id, secret_key) if s)
        self._sleep = sleep
        self._now = now
        self._attempts = attempts
        self._base_s = backoff_base_s
        self._cap_s = backoff_cap_s
        self._page = page_size
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "APCA-API-KEY-ID": key_id,
                "APCA-API-SECRET-KEY": secret_key,
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AlpacaBroker(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the broker port -------------------------------------------------------------

    async def submit(self, order: PlannedOrder) -> BrokerOrder:
        """Send `order` under its client order id; Alpaca's view of it."""
        reply = await self._call("POST", "/v2/orders", body=order_request(order))
        if reply.status == 422 and _DUPLICATE.search(reply.message):
            found = await self.lookup(order.client_order_id)
            if found is None:
                raise Ambiguous(f"alpaca: {order.client_order_id} is taken but not found")
            return found
        if not 200 <= reply.status < 300:
            raise refusal(reply.status, reply.body)
        try:
            return order_from_json(reply.body)
        except ValueError as exc:
            raise Ambiguous(f"alpaca: submit answer unreadable: {exc}") from None

    async def lookup(self, client_order_id: str) -> BrokerOrder | None:
        """The order with our `client_order_id`, or None when Alpaca does not know it."""
        params = {"client_order_id": client_order_id}
        reply = await self._call("GET", "/v2/orders:by_client_order_id", params=params)
        if reply.status == 404:
            return None
        return self._order(reply, "order look-up")

    async def cancel(self, client_order_id: str) -> BrokerOrder | None:
        """Ask Alpaca to cancel; the order as it stands afterwards (None: unknown)."""
        order = await self.lookup(client_order_id)
        if order is None or not order.is_open:
            return order
        reply = await self._call("DELETE", f"/v2/orders/{order.broker_order_id}")
        if reply.status not in (200, 204, 404, 422):  # 422: filled or cancelled meanwhile
            raise refusal(reply.status, reply.body)
        return await self.lookup(client_order_id)

    async def open_orders(self) -> Sequence[BrokerOrder]:
        """Every open order of the account, oldest first."""
        params = {"status": "open", "limit": str(self._page), "direction": "asc", "nested": "false"}
        seen: dict[str, BrokerOrder] = {}
        for _ in range(_MAX_PAGES):
            page = self._list(await self._call("GET", "/v2/orders", params=params), "orders")
            for raw in page:
                order = self._parse(order_from_json, raw, "orders")
                seen[order.broker_order_id] = order
            if len(page) < self._page:
                return list(seen.values())
            params = {**params, "after": str(page[-1]["submitted_at"])}
        raise Retryable(f"alpaca: more than {_MAX_PAGES * self._page} open orders")

    async def positions(self) -> Sequence[BrokerPosition]:
        body = self._list(await self._call("GET", "/v2/positions"), "positions")
        return [self._parse(position_from_json, raw, "positions") for raw in body]

    async def account(self) -> AlpacaAccount:
        """Buying power, equity and cash of the account."""
        reply = await self._call("GET", "/v2/account")
        self._ok(reply)
        return self._parse(account_from_json, reply.body, "account")

    # --- HTTP ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> _Reply:
        """Send with retries (module docstring); any reply that is not 429/408/5xx."""
        post = method == "POST"
        reached = False  # a POST answered 5xx: Alpaca may have acted on it
        last: Retryable | None = None
        for attempt in range(1, self._attempts + 1):
            if last is not None:
                await self._sleep(
                    backoff_delay(attempt - 1, self._base_s, self._cap_s, last.retry_after)
                )
            try:
                reply = await self._once(method, path, params, body)
            except Ambiguous:
                if post:
                    raise
                reply = None
                last = Retryable(f"alpaca: {method} {path}: no answer")
            except Retryable as exc:
                reply, last = None, exc
            if reply is not None:
                transient = await self._transient(method, path, reply)
                if transient is None:
                    return reply
                reached = reached or (post and reply.status != 429)
                last = transient
        assert last is not None
        raise Ambiguous(f"{last.message} (it may have been taken)") if reached else last

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> _Reply:
        try:
            response = await self._client.request(
                method, path, params=dict(params) if params else None, json=body
            )
        except _NOT_SENT as exc:
            raise Retryable(
                self._redact(f"alpaca: {type(exc).__name__} on {path}: {exc}")
            ) from None
        except httpx.TransportError as exc:
            message = f"alpaca: {type(exc).__name__} after sending {method} {path}: {exc}"
            raise Ambiguous(self._redact(message)) from None
        return _Reply(response.status_code, response.headers, self._json(response.text))

    async def _transient(self, method: str, path: str, reply: _Reply) -> Retryable | None:
        """The error to retry for a 429, 408 or 5xx reply; None for any other reply."""
        status = reply.status
        if status == 429:
            wait = await self._retry_after(reply.headers)
            return Retryable(f"alpaca: rate limited on {path}: {reply.message}", wait)
        if status == 408 or status >= 500:
            return Retryable(f"alpaca {status} on {method} {path}: {reply.message}")
        return None

    async def _retry_after(self, headers: httpx.Headers) -> float | None:
        try:
            return max(0.0, float(headers["Retry-After"]))
        except (KeyError, ValueError):
            pass
        if self._now is None:
            return None
        try:
            reset = float(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            return None
        return max(0.0, reset - (await self._now()).timestamp())

    def _order(self, reply: _Reply, what: str) -> BrokerOrder:
        self._ok(reply)
        return self._parse(order_from_json, reply.body, what)

    def _ok(self, reply: _Reply) -> None:
        if not 200 <= reply.status < 300:
            raise refusal(reply.status, reply.body)

    def _list(self, reply: _Reply, what: str) -> list[dict[str, Any]]:
        self._ok(reply)
        if not isinstance(reply.body, list):
            raise Retryable(f"alpaca {what}: the answer is not a list")
        return reply.body

    def _parse(self, parse: Callable[[Any], T], raw: Any, what: str) -> T:
        try:
            return parse(raw)
        except ValueError as exc:
            raise Retryable(f"alpaca {what}: unreadable answer: {exc}") from None

    def _json(self, text: str) -> Any:
        try:
            return json.loads(self._redact(text)) if text else None
        except ValueError:
            return None

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


# --- Alpaca's JSON ------------------------------------------------------------------------


def alpaca_symbol(order: PlannedOrder) -> str:
    """What Alpaca calls the instrument: the ticker, or the OCC symbol without spaces."""
    contract = order.contract
    return order.symbol if contract is None else contract.occ_symbol.replace(" ", "")


def instrument_of(symbol: str, asset_class: Any) -> str:
    """Our instrument for an Alpaca symbol: options as our padded OCC symbol."""
    if asset_class not in (None, "us_option"):
        return symbol
    contract = parse_occ(symbol)
    return symbol if contract is None else contract.occ_symbol


def order_request(order: PlannedOrder) -> dict[str, str]:
    """The body of `POST /v2/orders` for `order`: a day market or limit order."""
    body = {
        "symbol": alpaca_symbol(order),
        "qty": str(order.quantity),
        "side": order.side,
        "type": "market" if order.limit_price is None else "limit",
        "time_in_force": "day",  # the only one Alpaca takes for options
        "client_order_id": order.client_order_id,
    }
    if order.limit_price is not None:
        body["limit_price"] = _price(order.limit_price)
    return body


def broker_status(status: str, filled_quantity: int) -> BrokerStatus:
    """Alpaca's order status as one of ours (raises ValueError for an unknown one)."""
    if status in _SAME_STATUS:
        return _SAME_STATUS[status]
    if status in _STILL_OPEN:
        return "partially_filled" if filled_quantity > 0 else "accepted"
    raise ValueError(f"unknown order status {status!r}")


def order_from_json(raw: Any) -> BrokerOrder:
    """Alpaca's order object as a `BrokerOrder` (cumulative figures, no executions)."""
    try:
        filled = _quantity(raw.get("filled_qty"))
        status = str(raw["status"])
        avg = raw.get("filled_avg_price")
        return BrokerOrder(
            client_order_id=str(raw["client_order_id"]),
            broker_order_id=str(raw["id"]),
            instrument=instrument_of(str(raw["symbol"]), raw.get("asset_class")),
            side="buy" if str(raw["side"]).startswith("buy") else "sell",
            quantity=_quantity(raw["qty"]),
            status=broker_status(status, filled),
            updated_at=parse_utc(raw.get("updated_at") or raw["created_at"]),
            filled_quantity=filled,
            filled_avg_price=float(avg) if avg not in (None, "") and filled > 0 else None,
            reason=f"alpaca:{status}" if status in _FINAL_REASON else None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"order object: {type(exc).__name__}: {exc}") from None


def position_from_json(raw: Any) -> BrokerPosition:
    """Alpaca's position object; `quantity` signed (a short's `side` is "short")."""
    try:
        quantity = abs(_quantity(raw["qty"]))
        return BrokerPosition(
            instrument=instrument_of(str(raw["symbol"]), raw.get("asset_class")),
            quantity=-quantity if raw.get("side") == "short" else quantity,
            avg_price=float(raw["avg_entry_price"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"position object: {type(exc).__name__}: {exc}") from None


def account_from_json(raw: Any) -> AlpacaAccount:
    try:
        return AlpacaAccount(
            account_number=str(raw["account_number"]),
            status=str(raw["status"]),
            currency=str(raw.get("currency", "USD")),
            buying_power=float(raw["buying_power"]),
            equity=float(raw["equity"]),
            cash=float(raw["cash"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"account object: {type(exc).__name__}: {exc}") from None


def refusal(status: int, body: Any) -> Rejected:
    """A definitive no from Alpaca as `Rejected` with our code and Alpaca's detail."""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    code = body.get("code") if isinstance(body, dict) else None
    detail = {"status": status, "code": code, "message": message}
    return Rejected(_refusal_code(status, message), detail)


def _refusal_code(status: int, message: str) -> str:
    text = message.lower()
    if status == 401 or (status == 403 and text.rstrip(".") in ("", "forbidden")):
        return "broker_unauthorized"
    if "buying power" in text:
        return "insufficient_buying_power"
    if "insufficient" in text and "qty" in text:
        return "insufficient_quantity"
    if _MARKET_CLOSED.search(text):
        return "market_closed"
    if _NOT_TRADABLE.search(text):
        return "not_tradable"
    return "broker_rejected"


def _quantity(value: Any) -> int:
    """A whole quantity from Alpaca's decimal string (None is 0)."""
    if value in (None, ""):
        return 0
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"fractional quantity {value!r}")
    return int(number)


def _price(value: float) -> str:
    """Alpaca refuses sub-penny prices at or above $1."""
    return f"{value:.2f}" if value >= 1.0 else f"{value:.4f}"
