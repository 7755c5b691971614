"""The webhook's edge logic: check the request (engine.intake), then record it in the Store.

Accepted alerts are durable in DuckDB before the answer (201, or 200 for a duplicate);
refused requests are recorded as `webhook_request` events with their status and reason
before the answer too. Secrets never reach the event log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actors.clock import ClockLink
from engine.alerts import masked_payload
from engine.errors import Rejected, Retryable
from engine.intake import (
    RequestInfo,
    WebhookCredentials,
    WebhookRequest,
    evaluate,
    request_event,
    signal_draft,
)
from engine.ratelimit import BucketPolicy, KeyedRateLimiter
from engine.settings import Settings


def credentials(settings: Settings) -> WebhookCredentials:
    def reveal(value: Any) -> str | None:
        return None if value is None else str(value.get_secret_value())

    return WebhookCredentials(
        secret=settings.webhook_secret.get_secret_value(),
        url_token=reveal(settings.webhook_url_token),
        hmac_secret=reveal(settings.webhook_hmac_secret),
        sources=settings.webhook_sources,
    )


class WebhookIntake:
    """One per API replica; the rate limiter's buckets live here."""

    def __init__(
        self,
        settings: Settings,
        clock: ClockLink,
        call_store: Callable[..., Awaitable[Any]],
        on_signal: Callable[[int], None],
    ) -> None:
        self._creds = credentials(settings)
        self._window_s = settings.dedupe_window_s
        self._clock = clock
        self._call_store = call_store  # (method name, *args) -> the Store actor's answer
        self._on_signal = on_signal  # hands a new signal to the pipeline, without waiting
        policy = BucketPolicy(settings.webhook_rate_per_min / 60.0, settings.webhook_burst)
        self._limiter = KeyedRateLimiter(policy)
        self._mask = tuple(v for v in (self._creds.secret, self._creds.url_token) if v)
        self.draining = False

    async def handle(self, request: WebhookRequest) -> tuple[int, dict[str, Any]]:
        """(status, body) for one request, after it is recorded."""
        now = await self._clock.now()
        info = RequestInfo(
            received_at=now,
            source=request.source,
            content_type=request.content_type,
            size=len(request.body),
            auth=None,
            payload=masked_payload(request.body, request.content_type, self._mask),
        )
        if self.draining:
            return await self._refuse(info, 503, Retryable("shutting down"), "unavailable")
        try:
            alert, method = evaluate(request, self._creds, self._limiter, now)
        except Rejected as exc:
            return await self._refuse(info, exc.status, exc, exc.code)
        info = RequestInfo(**{**info.__dict__, "auth": method})
        draft = signal_draft(alert, info, self._window_s)
        result = await self._call_store("record_signal", draft)
        if result.duplicate_of is not None:
            return 200, {"signal_id": result.duplicate_of, "duplicate": True}
        self._on_signal(result.ids[0])
        return 201, {"signal_id": result.ids[0]}

    async def _refuse(
        self, info: RequestInfo, status: int, exc: Exception, code: str
    ) -> tuple[int, dict[str, Any]]:
        detail = exc.detail if isinstance(exc, Rejected) else str(exc)
        try:
            await self._call_store("record_events", (request_event(info, status, code),))
        except Retryable:
            if status != 503:
                raise
        body: dict[str, Any] = {"error": code, "detail": detail}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            body["retry_after"] = retry_after
        return status, body
