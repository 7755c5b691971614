"""Errors grouped by what the caller should do about them.

- `Retryable`: try again later (a timeout, a rate limit, a vendor hiccup).
- `Rejected`: do not retry; the input or a business rule said no. Carries a `code`
  (machine-readable, becomes the `"error"` of a 4xx body) and a `detail`.
- `Fatal`: an operator must act (bad configuration, corrupted state).

Every error pickles with its fields intact (`__reduce__`), so it crosses Ray actor calls.
The engine raises; the edge (API, actor) decides whether to log, retry or answer 4xx.
"""

from __future__ import annotations

from typing import Any


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""


class Retryable(TandemError):
    """A transient failure: the same call may succeed later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.retry_after))


class Rejected(TandemError):
    """Bad input or a business rule said no. Retrying the same request will not help."""

    status: int = 400

    def __init__(self, code: str, detail: Any = None) -> None:
        super().__init__(f"{code}: {detail}" if detail is not None else code)
        self.code = code
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.detail))


class NotFound(Rejected):
    status = 404


class Conflict(Rejected):
    status = 409


class Unauthorized(Rejected):
    status = 401


class Forbidden(Rejected):
    status = 403


class RateLimited(Rejected):
    """Too many requests for one caller; `retry_after` seconds is a hint."""

    status = 429

    def __init__(self, code: str, detail: Any = None, retry_after: float | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.detail, self.retry_after))


class Fatal(TandemError):
    """An operator must act: misconfiguration, corrupted or inconsistent state."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.hint))
