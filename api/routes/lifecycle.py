"""Draining before a stop: new webhooks get 503 while in-flight work finishes (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.auth import require
from engine.tokens import Role, TokenClaims

router = APIRouter(tags=["lifecycle"])
Admin = Annotated[TokenClaims, Depends(require(Role.ADMIN))]


@router.post("/drain")
async def drain(request: Request, _c: Admin) -> dict[str, bool]:
    """Refuse new webhooks with 503 (TradingView does not retry; nothing half-accepted)."""
    request.app.state.intake.draining = True
    return {"draining": True}


@router.delete("/drain")
async def resume(request: Request, _c: Admin) -> dict[str, bool]:
    request.app.state.intake.draining = False
    return {"draining": False}
