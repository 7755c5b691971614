"""Retrying transient failures with exponential back-off on the injected clock.

Only `Retryable` errors are retried; `Rejected`, `Fatal` and anything else propagate at
once. Waits go through the `Clock`, so a `SimClock` drives them without real sleeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from engine.clock import Clock
from engine.errors import Retryable

T = TypeVar("T")

# (retry number starting at 1, the error that caused it, seconds about to be waited)
RetryHook = Callable[[int, Retryable, float], None]

# 2**62 seconds is already far beyond any cap; larger exponents would overflow a float.
_MAX_EXPONENT = 62


def backoff_delay(
    retry_number: int, base_s: float, cap_s: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before retry `retry_number` (1 for the first retry).

    `base_s · 2^(n-1)` capped at `cap_s` (1 s, 2 s, 4 s … by default); a vendor's
    `retry_after` wins when it is longer, because retrying before it cannot succeed.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number starts at 1, got {retry_number}")
    delay = min(cap_s, base_s * 2.0 ** min(retry_number - 1, _MAX_EXPONENT))
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay


async def retry(
    call: Callable[[], Awaitable[T]],
    clock: Clock,
    *,
    attempts: int = 3,
    base_s: float = 1.0,
    cap_s: float = 30.0,
    on_retry: RetryHook | None = None,
) -> T:
    """Await `call()` up to `attempts` times, sleeping `backoff_delay` between tries.

    Re-raises the last `Retryable` when every attempt failed; any other exception
    propagates from the attempt that raised it, untouched.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if base_s < 0 or cap_s < 0:
        raise ValueError("base_s and cap_s must be >= 0")
    retry_number = 0
    while True:
        try:
            return await call()
        except Retryable as exc:
            retry_number += 1
            if retry_number >= attempts:
                raise
            delay = backoff_delay(retry_number, base_s, cap_s, exc.retry_after)
            if on_retry is not None:
                on_retry(retry_number, exc, delay)
            await clock.sleep(delay)
