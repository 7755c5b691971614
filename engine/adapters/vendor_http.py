"""One GET against a market-data vendor: throttle, send, map failures, retry.

Shared by the Alpaca and TwelveData adapters. Connection failures and timeouts become
`Retryable`; each vendor passes a `check` that turns an answer into our errors by its own
rules. Every `Retryable` carrying `retry_after` also pauses the throttler's window for
that long. API keys are redacted from every body before it is parsed and from every
message we build, so no error, log line or repr carries them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import httpx

from engine.clock import Clock
from engine.errors import Rejected, Retryable
from engine.retry import RetryHook, retry
from engine.throttle import Throttler

REDACTED = "***"


@dataclass(frozen=True, slots=True)
class VendorReply:
    """An HTTP answer: status, headers and the JSON body (None when it is not JSON)."""

    status: int
    headers: httpx.Headers
    body: Any


# Raises our error for a reply that is not a success; returns normally otherwise.
CheckReply = Callable[[VendorReply], None]


class VendorHttp:
    """An `httpx.AsyncClient` for one vendor, with throttling, retries and redaction."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        clock: Clock,
        timeout_s: float,
        attempts: int,
        throttler: Throttler | None = None,
        limit_id: str | None = None,
        on_retry: RetryHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if throttler is not None and limit_id is None:
            raise ValueError("a throttler needs the limit_id to charge")
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self._secrets = tuple(s for s in secrets if s)
        self._clock = clock
        self._attempts = attempts
        self._throttler = throttler
        self._limit_id = limit_id
        self._on_retry = on_retry
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"VendorHttp(vendor={self.vendor!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    async def get_json(self, path: str, params: Mapping[str, str], check: CheckReply) -> Any:
        """GET `path`, retrying `Retryable` failures on the clock; return the JSON body."""
        return await retry(
            lambda: self._get_once(path, params, check),
            self._clock,
            attempts=self._attempts,
            on_retry=self._on_retry,
        )

    async def _get_once(self, path: str, params: Mapping[str, str], check: CheckReply) -> Any:
        if self._throttler is not None and self._limit_id is not None:
            await self._throttler.acquire(self._limit_id)
        try:
            response = await self._client.get(path, params=dict(params))
        except httpx.TransportError as exc:
            # `from None`: the httpx error holds the request, and the request our keys.
            message = self.redact(f"{self.vendor}: {type(exc).__name__} on {path}: {exc}")
            raise Retryable(message) from None
        reply = VendorReply(response.status_code, response.headers, self._parse(response.text))
        try:
            check(reply)
        except Retryable as exc:
            self._pause_for(exc)
            raise
        return reply.body

    def _parse(self, text: str) -> Any:
        try:
            return json.loads(self.redact(text))
        except ValueError:
            return None

    def _pause_for(self, exc: Retryable) -> None:
        if self._throttler is None or self._limit_id is None or not exc.retry_after:
            return
        until = self._clock.now() + timedelta(seconds=exc.retry_after)
        self._throttler.pause(self._limit_id, until)


@contextmanager
def vendor_answer(vendor: str, what: str) -> Iterator[None]:
    """Turn a malformed vendor body (missing key, wrong type) into `Rejected("vendor_bad_answer")`.

    Not `Retryable`: asking again gets the same shape; a caller may fall back to another
    vendor instead.
    """
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        detail = f"{vendor} {what}: {type(exc).__name__}: {exc}"
        raise Rejected("vendor_bad_answer", detail) from None


class VendorClient:
    """What every vendor adapter shares: its `VendorHttp`, closing it, `async with`."""

    _http: VendorHttp

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
