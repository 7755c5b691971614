"""A loopback Alpaca Trading API: REST and the `trade_updates` websocket, on 127.0.0.1.

`AlpacaTradingLoopback` serves one `FakeAlpacaTrading` over real HTTP/1.1 (a threading
HTTP server) and a real websocket (the `websockets` library's threaded server), each on a
port the OS picks. What the fake reproduces, from Alpaca's Trading API v2 documentation
and the answers its users have published:

- REST: `POST /v2/orders` (validated: symbol, qty, side, type, time_in_force,
  client_order_id unique, limit_price for limit orders, options only `day`),
  `GET /v2/orders[?status&limit&direction&after]`, `GET /v2/orders/{id}`,
  `GET /v2/orders:by_client_order_id?client_order_id=`, `DELETE /v2/orders/{id}` (204,
  422 when no longer cancellable), `GET /v2/positions`, `GET /v2/account`; numbers as
  strings, timestamps with nanoseconds.
- Keys: `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`; a missing or unknown key id is 401
  `{"code": 40110000, "message": "request is not authorized"}`, a wrong secret 403
  `{"message": "forbidden."}`.
- Errors: 403 `{"code": 40310000, "message": "insufficient buying power", ...}`, 422
  `{"code": 42210000 | 40010001, "message": ...}` (not tradable, market hours, duplicate
  client order id), 404 `{"code": 40410000, "message": "order not found"}`.
- Stream (`/stream`): `{"action": "auth", "key", "secret"}` (or the older
  `{"action": "authenticate", "data": {"key_id", "secret_key"}}`) answered on the
  `authorization` stream, then `listen` answered on `listening`, then `trade_updates`
  events (`new`, `partial_fill`, `fill`, `canceled`, `rejected`, `expired`) with the
  order object, `execution_id`, `price`, `qty`, `position_qty`, `timestamp`. Frames are
  binary like the paper stream's (`frames="text"` like the live one, or `"alternate"`).
  Nothing is replayed to a client that was not listening when an event happened.

Tests steer it: `fill`, `reject_at_venue`, `expire` act as the venue; `script` makes the
next request fail, or succeed with its answer lost or late (`Script`); `pause_stream` drops
every stream connection and refuses new ones until `resume_stream`.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from tests.contract.vendor_servers import Reply

OCC = re.compile(r"^(?P<root>[A-Z0-9]{1,6})\d{6}[CP]\d{8}$")
ORDER_TYPES = {"market", "limit", "stop", "stop_limit", "trailing_stop"}
TIME_IN_FORCE = {"day", "gtc", "opg", "cls", "ioc", "fok"}
OPEN = {
    "new",
    "accepted",
    "partially_filled",
    "pending_new",
    "pending_cancel",
    "pending_replace",
    "accepted_for_bidding",
    "done_for_day",
    "held",
}
UNAUTHORIZED = Reply(401, {"code": 40110000, "message": "request is not authorized"})
FORBIDDEN = Reply(403, {"message": "forbidden."})
_DROP = object()


@dataclass(frozen=True)
class TradingCall:
    """One REST request as Alpaca saw it. Header names are lower case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: datetime

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Script:
    """How to treat the next request (of `method`, when given).

    `reply` answers instead of the real answer (None: the real one); `process` carries the
    request out anyway (the venue acted, then its answer failed); `delay_s` waits that
    many real seconds before answering (a client timeout after the request arrived).
    """

    reply: Reply | None = None
    process: bool = False
    delay_s: float = 0.0
    method: str | None = None


def error(status: int, code: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {**extra, "code": code, "message": message})


def _stamp(t: datetime) -> str:
    """Alpaca's RFC-3339 with nanoseconds: `2024-12-31T16:51:21.525446471Z`."""
    t = t.astimezone(UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}471Z"


def _num(value: float) -> str:
    return format(Decimal(str(round(value, 6))).normalize(), "f")


@dataclass
class _Position:
    symbol: str
    asset_class: str
    qty: int = 0
    avg: float = 0.0
    asset_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class FakeAlpacaTrading:
    """Alpaca's trading venue: orders, positions, account, and its trade_updates stream."""

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        frames: str = "binary",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.key_id = key_id
        self.secret_key = secret_key
        self.frames = frames
        self._now = now or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.calls: list[TradingCall] = []
        self.orders: dict[str, dict[str, Any]] = {}  # Alpaca id → order object, in order
        self.positions: dict[str, _Position] = {}
        self.prices: dict[str, float] = {}  # last price, for market orders' buying power
        self.untradable: set[str] = set()
        self.market_open = True
        self.cash = 100_000.0
        self.executions: list[dict[str, Any]] = []
        self.stream_received: list[dict[str, Any]] = []  # what stream clients sent
        self.frame_kinds: list[str] = []  # "binary" / "text", every frame sent
        self.stream_connections = 0
        self._script: deque[Script] = deque()
        self._subscribers: list[queue.Queue[Any]] = []
        self._paused = False
        self.closing = threading.Event()

    # --- steering ---------------------------------------------------------------------

    def script(self, *scripts: Script) -> None:
        with self.lock:
            self._script.extend(scripts)

    def calls_to(self, method: str, path: str) -> list[TradingCall]:
        return [c for c in self.calls if c.method == method and c.path == path]

    def orders_with(self, client_order_id: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["client_order_id"] == client_order_id]

    def fill(self, client_order_id: str, qty: int, price: float) -> str:
        """Execute `qty` of the order at `price`; the execution id. Sends `partial_fill`
        or `fill` to every listening stream client."""
        with self.lock:
            order = self._by_client_id(client_order_id)
            done, total = int(order["filled_qty"]), int(order["qty"])
            assert order["status"] in OPEN and done + qty <= total, "not fillable"
            old_avg = float(order["filled_avg_price"] or 0.0)
            filled = done + qty
            at = _stamp(self._now())
            order["filled_qty"] = str(filled)
            order["filled_avg_price"] = _num((old_avg * done + price * qty) / filled)
            order["status"] = "filled" if filled == total else "partially_filled"
            order["updated_at"] = at
            if filled == total:
                order["filled_at"] = at
            position = self._book(order, qty, price)
            execution_id = str(uuid.uuid4())
            self.executions.append({"client_order_id": client_order_id, "id": execution_id})
            self._emit(
                "fill" if filled == total else "partial_fill",
                order,
                execution_id=execution_id,
                price=_num(price),
                qty=str(qty),
                position_qty=str(position.qty),
            )
            return execution_id

    def reject_at_venue(self, client_order_id: str) -> None:
        self._finish(client_order_id, "rejected", "failed_at")

    def expire(self, client_order_id: str) -> None:
        self._finish(client_order_id, "expired", "expired_at")

    def pause_stream(self) -> None:
        """Drop every stream connection (no close frame) and refuse new ones."""
        with self.lock:
            self._paused = True
            for subscriber in self._subscribers:
                subscriber.put(_DROP)

    def resume_stream(self) -> None:
        with self.lock:
            self._paused = False

    def listening(self) -> int:
        with self.lock:
            return len(self._subscribers)

    # --- REST --------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        split = urlsplit(target)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not JSON>"
        call = TradingCall(
            method, split.path, parse_qs(split.query, keep_blank_values=True), headers, body,
            self._now(),
        )  # fmt: skip
        with self.lock:
            self.calls.append(call)
            script = self._next_script(method)
            if script is not None and script.reply is not None and not script.process:
                return Reply(script.reply.status, script.reply.body, script.reply.headers,
                             script.delay_s)  # fmt: skip
            reply = self._auth(call) or self._route(call)
        if script is None:
            return reply
        answer = script.reply or reply
        return Reply(answer.status, answer.body, answer.headers, script.delay_s)

    def _next_script(self, method: str) -> Script | None:
        for i, script in enumerate(self._script):
            if script.method in (None, method):
                del self._script[i]
                return script
        return None

    def _auth(self, call: TradingCall) -> Reply | None:
        key = call.headers.get("apca-api-key-id")
        secret = call.headers.get("apca-api-secret-key")
        if key is None or secret is None or key != self.key_id:
            return UNAUTHORIZED
        if secret != self.secret_key:
            return FORBIDDEN
        return None

    def _route(self, call: TradingCall) -> Reply:
        path, method = call.path, call.method
        if path == "/v2/orders":
            return self._submit(call.body) if method == "POST" else self._list(call)
        if path == "/v2/orders:by_client_order_id" and method == "GET":
            order = self._find_client_id(call.param("client_order_id") or "")
            return Reply(200, order) if order else error(404, 40410000, "order not found")
        if path.startswith("/v2/orders/"):
            return self._one(method, path.removeprefix("/v2/orders/"))
        if path == "/v2/positions" and method == "GET":
            return Reply(200, [self._position_json(p) for p in self.positions.values() if p.qty])
        if path == "/v2/account" and method == "GET":
            return Reply(200, self._account_json())
        return error(404, 40410000, "endpoint not found")

    def _submit(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return error(400, 40010000, "request body format is invalid")
        invalid = self._invalid(body)
        if invalid is not None:
            return invalid
        refused = self._refused(body)
        if refused is not None:
            return refused
        order = self._new_order(body)
        accepted = dict(order)
        order["status"] = "new"
        self._emit("new", order, execution_id=str(uuid.uuid4()))
        return Reply(200, accepted)

    def _invalid(self, body: dict[str, Any]) -> Reply | None:  # noqa: PLR0911
        for name in ("symbol", "side", "type", "time_in_force"):
            if not body.get(name):
                return error(422, 40010001, f"{name} is required")
        if body["side"] not in ("buy", "sell"):
            return error(422, 40010001, "invalid side")
        if body["type"] not in ORDER_TYPES or body["time_in_force"] not in TIME_IN_FORCE:
            return error(422, 40010001, "invalid order type or time_in_force")
        try:
            qty = Decimal(str(body.get("qty")))
        except InvalidOperation:
            return error(422, 40010001, "qty is required")
        option = OCC.match(str(body["symbol"])) is not None
        if qty <= 0 or (option and qty != qty.to_integral_value()):
            return error(422, 40010001, "qty must be a positive whole number of contracts")
        if option and body["time_in_force"] != "day":
            return error(422, 42210000, "options orders must be day orders")
        if (body["type"] == "limit") != ("limit_price" in body):
            return error(422, 40010001, "limit_price is required for limit orders only")
        cid = str(body.get("client_order_id") or uuid.uuid4())
        if len(cid) > 128:
            return error(422, 40010001, "client_order_id must be no more than 128 characters")
        if self._find_client_id(cid) is not None:
            return error(422, 40010001, "client_order_id must be unique")
        return None

    def _refused(self, body: dict[str, Any]) -> Reply | None:
        symbol = str(body["symbol"])
        option = OCC.match(symbol)
        if symbol in self.untradable:
            return error(422, 42210000, f"asset {symbol} is not tradable")
        if option and body["type"] == "market" and not self.market_open:
            return error(
                422, 42210000, "options market orders are only allowed during market hours"
            )
        price = float(body.get("limit_price") or self.prices.get(symbol, 100.0))
        cost = float(body["qty"]) * price * (100 if option else 1)
        if body["side"] == "buy" and cost > self.cash:
            return error(403, 40310000, "insufficient buying power",
                         buying_power=_num(self.cash), cost_basis=_num(cost))  # fmt: skip
        return None

    def _new_order(self, body: dict[str, Any]) -> dict[str, Any]:
        at = _stamp(self._now())
        option = OCC.match(str(body["symbol"])) is not None
        side = body["side"]
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": str(body.get("client_order_id") or uuid.uuid4()),
            "created_at": at, "updated_at": at, "submitted_at": at,
            "filled_at": None, "expired_at": None, "canceled_at": None, "failed_at": None,
            "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": str(uuid.uuid4()), "symbol": body["symbol"],
            "asset_class": "us_option" if option else "us_equity",
            "notional": None, "qty": str(body["qty"]), "filled_qty": "0",
            "filled_avg_price": None, "order_class": "simple",
            "order_type": body["type"], "type": body["type"], "side": side,
            "position_intent": f"{side}_to_open" if option else None,
            "time_in_force": body["time_in_force"],
            "limit_price": body.get("limit_price"), "stop_price": None,
            "status": "accepted", "extended_hours": False, "legs": None,
            "trail_percent": None, "trail_price": None, "hwm": None,
        }  # fmt: skip
        self.orders[order["id"]] = order
        return order

    def _list(self, call: TradingCall) -> Reply:
        status = call.param("status") or "open"
        limit = int(call.param("limit") or 50)
        if not 1 <= limit <= 500:
            return error(422, 40010001, "limit must be between 1 and 500")
        rows = [
            o
            for o in self.orders.values()
            if status == "all" or (o["status"] in OPEN) == (status == "open")
        ]
        after = call.param("after")
        if after:
            rows = [o for o in rows if o["submitted_at"] > after]
        rows.sort(key=lambda o: o["submitted_at"], reverse=call.param("direction") != "asc")
        return Reply(200, rows[:limit])

    def _one(self, method: str, order_id: str) -> Reply:
        order = self.orders.get(order_id)
        if order is None:
            return error(404, 40410000, "order not found")
        if method == "GET":
            return Reply(200, order)
        if method != "DELETE":
            return error(405, 40510000, "method not allowed")
        if order["status"] not in OPEN:
            return error(422, 42210000, "order is not cancelable")
        self._finish(order["client_order_id"], "canceled", "canceled_at")
        return Reply(204)

    # --- the venue's book ---------------------------------------------------------------

    def _by_client_id(self, client_order_id: str) -> dict[str, Any]:
        order = self._find_client_id(client_order_id)
        assert order is not None, f"no order {client_order_id}"
        return order

    def _find_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        return next(
            (o for o in self.orders.values() if o["client_order_id"] == client_order_id), None
        )

    def _finish(self, client_order_id: str, status: str, stamp: str) -> None:
        with self.lock:
            order = self._by_client_id(client_order_id)
            at = _stamp(self._now())
            order.update({"status": status, stamp: at, "updated_at": at})
            self._emit(status, order)

    def _book(self, order: dict[str, Any], qty: int, price: float) -> _Position:
        symbol = order["symbol"]
        position = self.positions.setdefault(symbol, _Position(symbol, order["asset_class"]))
        signed = qty if order["side"] == "buy" else -qty
        after = position.qty + signed
        if position.qty == 0 or (position.qty > 0) == (signed > 0):
            position.avg = (position.avg * abs(position.qty) + price * qty) / abs(after)
        elif after != 0 and (after > 0) != (position.qty > 0):
            position.avg = price  # flipped through zero
        position.qty = after
        multiplier = 100 if order["asset_class"] == "us_option" else 1
        self.cash -= signed * price * multiplier
        self.prices[symbol] = price
        return position

    def _position_json(self, p: _Position) -> dict[str, Any]:
        multiplier = 100 if p.asset_class == "us_option" else 1
        price = self.prices.get(p.symbol, p.avg)
        value = p.qty * price * multiplier
        return {
            "asset_id": p.asset_id, "symbol": p.symbol, "exchange": "",
            "asset_class": p.asset_class, "asset_marginable": p.asset_class == "us_equity",
            "qty": str(p.qty), "qty_available": str(p.qty), "avg_entry_price": _num(p.avg),
            "side": "long" if p.qty > 0 else "short", "market_value": _num(value),
            "cost_basis": _num(p.qty * p.avg * multiplier), "unrealized_pl": "0",
            "unrealized_plpc": "0", "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0", "current_price": _num(price),
            "lastday_price": _num(price), "change_today": "0",
        }  # fmt: skip

    def _account_json(self) -> dict[str, Any]:
        held = sum(float(self._position_json(p)["market_value"]) for p in self.positions.values())
        cash, equity = _num(self.cash), _num(self.cash + held)
        return {
            "id": "2d6e1a7e-0c9b-4b4e-9d38-5b9f3f1c7a11", "account_number": "PA3FAKE00001",
            "status": "ACTIVE", "crypto_status": "ACTIVE", "currency": "USD",
            "buying_power": cash, "regt_buying_power": cash, "daytrading_buying_power": "0",
            "non_marginable_buying_power": cash, "options_buying_power": cash, "cash": cash,
            "portfolio_value": equity, "equity": equity, "last_equity": equity,
            "long_market_value": _num(max(held, 0.0)), "short_market_value": "0",
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "trade_suspended_by_user": False, "multiplier": "1",
            "shorting_enabled": False, "options_trading_level": 2,
            "created_at": "2024-01-02T15:04:05.123456789Z",
        }  # fmt: skip

    # --- the stream ----------------------------------------------------------------------

    def _emit(self, event: str, order: dict[str, Any], **fields: Any) -> None:
        data = {"event": event, "order": dict(order), "timestamp": order["updated_at"], **fields}
        for subscriber in self._subscribers:
            subscriber.put({"stream": "trade_updates", "data": data})

    def stream_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != "/stream":
            return connection.respond(404, "Not Found\n")
        with self.lock:
            if self._paused:
                return connection.respond(503, "stream unavailable\n")
        return None

    def stream_session(self, connection: ServerConnection) -> None:
        """One client: authenticate, listen, then every event until it goes away."""
        mailbox: queue.Queue[Any] = queue.Queue()
        try:
            if self._stream_handshake(connection, mailbox):
                self._pump(connection, mailbox)
        except (ConnectionClosed, TimeoutError, ValueError, OSError):
            pass
        finally:
            with self.lock:
                if mailbox in self._subscribers:
                    self._subscribers.remove(mailbox)

    def _stream_handshake(self, connection: ServerConnection, mailbox: queue.Queue[Any]) -> bool:
        auth = json.loads(connection.recv(timeout=10))
        with self.lock:
            self.stream_received.append(auth)
            self.stream_connections += 1
        authorized = self._stream_keys_ok(auth)
        status = "authorized" if authorized else "unauthorized"
        self._send(connection, {"stream": "authorization",
                                "data": {"status": status, "action": "authenticate"}})  # fmt: skip
        if not authorized:
            connection.close()
            return False
        listen = json.loads(connection.recv(timeout=10))
        requested = (listen.get("data") or {}).get("streams") or []
        streams = [s for s in requested if s == "trade_updates"]
        with self.lock:
            self.stream_received.append(listen)
            if listen.get("action") == "listen" and streams:
                self._subscribers.append(mailbox)
        self._send(connection, {"stream": "listening", "data": {"streams": streams}})
        return bool(streams)

    def _stream_keys_ok(self, message: dict[str, Any]) -> bool:
        if message.get("action") == "auth":
            given = (message.get("key"), message.get("secret"))
        elif message.get("action") == "authenticate":
            data = message.get("data") or {}
            given = (data.get("key_id"), data.get("secret_key"))
        else:
            return False
        return given == (self.key_id, self.secret_key)

    def _pump(self, connection: ServerConnection, mailbox: queue.Queue[Any]) -> None:
        while not self.closing.is_set():
            try:
                item = mailbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _DROP:
                connection.socket.shutdown(socket.SHUT_RDWR)  # a dropped line: no close frame
                return
            self._send(connection, item)

    def _send(self, connection: ServerConnection, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        with self.lock:
            n = len(self.frame_kinds)
            binary = self.frames == "binary" or (self.frames == "alternate" and n % 2 == 0)
            self.frame_kinds.append("binary" if binary else "text")
        connection.send(text.encode() if binary else text)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    fake: FakeAlpacaTrading

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.fake.handle(method, self.path, headers, raw)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if reply.status != 204:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.status != 204:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AlpacaTradingLoopback:
    """Serves `fake` (REST at `url`, the stream at `stream_url`) while entered."""

    def __init__(self, fake: FakeAlpacaTrading) -> None:
        self.fake = fake
        self._http = _HttpServer(("127.0.0.1", 0), _Handler)
        self._http.fake = fake
        self._ws: Server = serve(
            fake.stream_session,
            "127.0.0.1",
            0,
            process_request=fake.stream_request,
            compression=None,
        )
        self._threads = [
            threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            ),
            threading.Thread(target=self._ws.serve_forever, daemon=True),
        ]

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stream_url(self) -> str:
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/stream"

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.fake.closing.set()
        self._http.shutdown()
        self._http.server_close()
        self._ws.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)


def serving(fake: FakeAlpacaTrading) -> Iterator[AlpacaTradingLoopback]:
    """For fixtures: `yield from serving(fake)`."""
    with AlpacaTradingLoopback(fake) as loopback:
        yield loopback
