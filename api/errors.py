"""Map errors to typed JSON answers: `{"error": code, "detail": ...}`. A 5xx is a bug."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import Fatal, RateLimited, Rejected, Retryable, TandemError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_payload",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(code: str, detail: Any = None) -> dict[str, Any]:
    return {"error": code, "detail": detail}


def validation_detail(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or "body", "problem": str(err.get("msg", "invalid"))})
    return out


def _cause(exc: Exception) -> Exception:
    """Errors raised in an actor arrive wrapped by Ray; answer with the original."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_payload", validation_detail(exc)), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, exc.detail), exc.status_code)

    @app.exception_handler(TandemError)
    async def _ours(_req: Request, exc: TandemError) -> JSONResponse:
        return answer_for(_cause(exc))

    @app.exception_handler(Exception)
    async def _any(_req: Request, exc: Exception) -> JSONResponse:
        return answer_for(_cause(exc))


def answer_for(exc: Exception) -> JSONResponse:
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(int(exc.retry_after or 1))}
        return JSONResponse(error_body(exc.code, exc.detail), exc.status, headers=headers)
    if isinstance(exc, Rejected):
        return JSONResponse(error_body(exc.code, exc.detail), exc.status)
    if isinstance(exc, Retryable):
        return JSONResponse(error_body("unavailable", exc.message), 503)
    if isinstance(exc, Fatal):
        log.error("fatal error answering a request: %s", exc)
        return JSONResponse(error_body("fatal", exc.message), 500)
    log.exception("unhandled error (a bug)", exc_info=exc)
    return JSONResponse(error_body("internal", type(exc).__name__), 500)
