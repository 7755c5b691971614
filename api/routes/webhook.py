"""POST /webhook: TradingView alerts (and other senders) in, durable signals out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from actors.metrics import counter
from api.intake import WebhookIntake
from engine.alerts import MAX_BODY_BYTES
from engine.intake import WebhookRequest

router = APIRouter(tags=["webhook"])

SIGNATURE_HEADER = "x-tandem-signature"
_REQUESTS = counter("webhook_requests_total", "webhook requests by the status answered", ["status"])


async def _read_capped(request: Request) -> bytes:
    """The body, but never more than one byte past the limit (the caller answers 413)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
    return b"".join(chunks)


async def _handle(request: Request, url_token: str | None) -> JSONResponse:
    intake: WebhookIntake = request.app.state.intake
    webhook_request = WebhookRequest(
        body=await _read_capped(request),
        content_type=request.headers.get("content-type"),
        url_token=url_token,
        signature=request.headers.get(SIGNATURE_HEADER),
        source=request.client.host if request.client else None,
    )
    status, body = await intake.handle(webhook_request)
    _REQUESTS.inc(1, tags={"status": str(status)})
    headers = {}
    if "retry_after" in body:
        headers["Retry-After"] = str(max(1, round(float(body.pop("retry_after")) + 0.5)))
    return JSONResponse(body, status_code=status, headers=headers)


@router.post("/webhook", status_code=201)
async def webhook(request: Request) -> JSONResponse:
    """Accept an alert. The body is read raw whatever its Content-Type (TradingView sends
    text/plain when the message is not JSON). 201 new signal, 200 duplicate, 400 invalid,
    401 bad secret, 403 source not allowed, 413 too large, 429 too many."""
    return await _handle(request, None)


@router.post("/webhook/{url_token}", status_code=201, include_in_schema=False)
async def webhook_with_token(request: Request, url_token: str) -> JSONResponse:
    return await _handle(request, url_token)
