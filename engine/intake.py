"""What the webhook hands to the Store: the signal row, its dedupe key, and its events.

Every request, accepted or not, becomes a `webhook_request` event (secrets masked); an
accepted alert also becomes a `signal_received` event, written in the same transaction as
the signal row itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.alerts import (
    MAX_BODY_BYTES,
    Alert,
    PayloadTooLarge,
    alert_from_fields,
    decode_fields,
    secret_field,
)
from engine.errors import Forbidden, Unauthorized
from engine.events import Event
from engine.ratelimit import KeyedRateLimiter
from engine.webhook_auth import check_secret, check_signature, check_url_token, source_allowed

WEBHOOK_STREAM = "webhook"
SIGNALS_STREAM = "signals"


@dataclass(frozen=True)
class RequestInfo:
    """Facts about one webhook request, for its `webhook_request` event."""

    received_at: datetime
    source: str | None
    content_type: str | None
    size: int
    auth: str | None  # which credential was accepted: body_secret | url_token | hmac
    payload: Any  # masked: never holds a secret


@dataclass(frozen=True)
class SignalDraft:
    """An accepted alert on its way to the Store, which dedupes it and writes it."""

    row: Mapping[str, Any]
    dedupe_key: str
    received_at: datetime
    window_s: float
    events: tuple[Event, ...]
    duplicate_events: tuple[Event, ...]


def request_event(info: RequestInfo, status: int, reason: str | None) -> Event:
    payload = {
        "status": status,
        "reason": reason,
        "source": info.source,
        "content_type": info.content_type,
        "size": info.size,
        "auth": info.auth,
        "payload": info.payload,
    }
    return Event("webhook_request", WEBHOOK_STREAM, info.received_at, payload)


def signal_row(alert: Alert) -> dict[str, Any]:
    """The `signals` row of an accepted alert (the Store adds its id and receipt time)."""
    return {
        "symbol": alert.symbol,
        "direction": alert.direction,
        "timeframe": alert.timeframe,
        "bar_time": alert.bar_time,
        "action": "exit" if alert.is_exit else "entry",
        "strategy": alert.strategy,
        "price": alert.price,
        "market_position": alert.market_position,
        "prev_market_position": alert.prev_market_position,
        "source": "webhook",
        "status": "received",
        "payload": None,
    }


def signal_draft(alert: Alert, info: RequestInfo, window_s: float) -> SignalDraft:
    """The row and events for an accepted alert (201), or its events as a duplicate (200)."""
    row = signal_row(alert)
    received = Event(
        "signal_received",
        SIGNALS_STREAM,
        info.received_at,
        {k: v for k, v in row.items() if k not in ("payload", "status")},
    )
    return SignalDraft(
        row=row,
        dedupe_key=alert.dedupe_key,
        received_at=info.received_at,
        window_s=window_s,
        events=(request_event(info, 201, None), received),
        duplicate_events=(request_event(info, 200, "duplicate"),),
    )


@dataclass(frozen=True)
class WebhookCredentials:
    """What a sender may prove: the body secret, a URL token, or an HMAC of the body."""

    secret: str
    url_token: str | None = None
    hmac_secret: str | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    content_type: str | None
    url_token: str | None
    signature: str | None
    source: str | None


def authenticate(
    request: WebhookRequest, fields: Mapping[str, object], creds: WebhookCredentials
) -> str:
    """The credential that matched (`body_secret`, `url_token`, `hmac`), else `Unauthorized`."""
    if check_secret(secret_field(fields), creds.secret):
        return "body_secret"
    if creds.url_token is not None and check_url_token(request.url_token, creds.url_token):
        return "url_token"
    if creds.hmac_secret is not None and check_signature(
        request.signature, creds.hmac_secret.encode(), request.body
    ):
        return "hmac"
    raise Unauthorized("unauthorized", "missing or wrong secret, token or signature")


def evaluate(
    request: WebhookRequest,
    creds: WebhookCredentials,
    limiter: KeyedRateLimiter,
    now: datetime,
) -> tuple[Alert, str]:
    """Check one webhook request in the order a caller should learn about problems:
    size (413), source (403), body shape (400), credentials (401), fields (400), rate (429).

    The field-by-field detail is given only to an authenticated sender. The rate limit is
    per strategy (or per credential when the alert names none), never per source address.
    """
    if len(request.body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
    if request.source is not None and not source_allowed(request.source, creds.sources):
        raise Forbidden("source_not_allowed", request.source)
    fields = decode_fields(request.body, request.content_type)
    method = authenticate(request, fields, creds)
    alert = alert_from_fields(fields).alert
    limiter.check(f"strategy:{alert.strategy}" if alert.strategy else f"auth:{method}", now)
    return alert, method
