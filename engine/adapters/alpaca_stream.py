"""Alpaca's trading stream protocol (`wss://paper-api.alpaca.markets/stream`), without I/O.

The socket belongs to `actors/user_stream.py`; this module says what to send and what a
frame means. The exchange, in JSON (the paper stream sends binary frames, the live one
text frames: `decode` takes both):

    → {"action": "auth", "key": KEY_ID, "secret": SECRET}
    ← {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
    → {"action": "listen", "data": {"streams": ["trade_updates"]}}
    ← {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    ← {"stream": "trade_updates", "data": {"event": "fill", "order": {...},
        "execution_id": ..., "price": "167.52", "qty": "5", "position_qty": "5",
        "timestamp": ...}}

A trade update becomes the `BrokerOrder` the OrderTracker applies: the order object gives
the status and the cumulative fill; a `fill` or `partial_fill` carries its execution as a
`BrokerFill` whose `fill_id` is Alpaca's `execution_id`, so an execution reported twice is
recorded once. Alpaca does not replay what was sent while nobody listened: the stream's
reader reconciles after every (re)connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from engine.adapters.alpaca_trading import order_from_json
from engine.adapters.vendor_time import parse_utc
from engine.broker import BrokerFill, BrokerOrder
from engine.errors import Rejected, Retryable

TRADE_UPDATES = "trade_updates"
# The events the OrderTracker acts on; the others (pending_new, pending_cancel, replaced,
# done_for_day, ...) change nothing it records.
FORWARDED_EVENTS = frozenset({"new", "fill", "partial_fill", "canceled", "rejected", "expired"})
FILL_EVENTS = frozenset({"fill", "partial_fill"})


@dataclass(frozen=True, slots=True)
class Authorization:
    authorized: bool


@dataclass(frozen=True, slots=True)
class Listening:
    streams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    event: str
    order: BrokerOrder


@dataclass(frozen=True, slots=True)
class Other:
    """A frame of another stream, or an event the tracker does not act on."""

    stream: str


StreamMessage = Authorization | Listening | TradeUpdate | Other


def auth_message(key_id: str, secret_key: str) -> str:
    return json.dumps({"action": "auth", "key": key_id, "secret": secret_key})


def listen_message(streams: tuple[str, ...] = (TRADE_UPDATES,)) -> str:
    return json.dumps({"action": "listen", "data": {"streams": list(streams)}})


def parse_frame(frame: str | bytes) -> StreamMessage:
    """One frame (text or binary) as a message; ValueError when it is not one."""
    try:
        raw = json.loads(frame.decode() if isinstance(frame, bytes) else frame)
        stream, data = str(raw["stream"]), raw.get("data") or {}
        if stream == "authorization":
            return Authorization(data.get("status") == "authorized")
        if stream == "listening":
            return Listening(tuple(str(s) for s in data.get("streams") or ()))
        if stream == TRADE_UPDATES:
            return trade_update(data)
        return Other(stream)
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"alpaca stream frame: {type(exc).__name__}: {exc}") from None


def trade_update(data: Any) -> TradeUpdate | Other:
    """A `trade_updates` payload as the order it updates (with its execution, if any)."""
    event = str(data["event"])
    if event not in FORWARDED_EVENTS:
        return Other(f"{TRADE_UPDATES}:{event}")
    order = order_from_json(data["order"])
    execution = data.get("execution_id")
    if event in FILL_EVENTS and execution and data.get("qty") is not None:
        fill = BrokerFill(
            client_order_id=order.client_order_id,
            fill_id=str(execution),
            quantity=_whole(data["qty"]),
            price=float(data["price"]),
            fees=0.0,
            filled_at=parse_utc(str(data["timestamp"])),
        )
        order = replace(order, fills=(fill,))
    return TradeUpdate(event, order)


def expect_authorized(message: StreamMessage) -> None:
    """The answer to `auth_message`: anything but "authorized" is a definitive no."""
    if not isinstance(message, Authorization):
        raise Retryable(f"alpaca stream: expected authorization, got {message!r}")
    if not message.authorized:
        raise Rejected("broker_unauthorized", "alpaca stream: authentication refused")


def expect_listening(message: StreamMessage) -> None:
    """The answer to `listen_message`: trade_updates must be among the streams."""
    if not isinstance(message, Listening) or TRADE_UPDATES not in message.streams:
        raise Retryable(f"alpaca stream: not listening to {TRADE_UPDATES}: {message!r}")


def _whole(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"fractional quantity {value!r}")
    return int(number)
