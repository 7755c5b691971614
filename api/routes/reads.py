"""Read API (viewer role): signals with their whole trail, orders, positions, trades."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from api.auth import require
from engine.read_models import MAX_PAGE, ListQuery
from engine.tokens import Role, TokenClaims

router = APIRouter(tags=["read"])
Viewer = Annotated[TokenClaims, Depends(require(Role.VIEWER))]


async def _page(request: Request, table: str, **filters: Any) -> dict[str, Any]:
    query = ListQuery(table=table, **filters)
    rows = await request.app.state.backend.call_store("list_rows", query)
    return {"items": jsonable_encoder(rows), "limit": query.limit, "offset": query.offset}


def _filters(
    *,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    symbol: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    return {
        "limit": limit,
        "offset": offset,
        "symbol": symbol.upper() if symbol else None,
        "status": status,
        "since": since,
        "until": until,
    }


Filters = Annotated[dict[str, Any], Depends(_filters)]


@router.get("/signals")
async def list_signals(request: Request, _c: Viewer, f: Filters) -> dict[str, Any]:
    return await _page(request, "signals", **f)


@router.get("/signals/{signal_id}")
async def signal_trail(request: Request, _c: Viewer, signal_id: int) -> Any:
    """signal → decision → orders → fills → positions, and the signal's events."""
    trail = await request.app.state.backend.call_store("signal_trail", signal_id)
    return jsonable_encoder(trail)


@router.get("/orders")
async def list_orders(request: Request, _c: Viewer, f: Filters) -> dict[str, Any]:
    return await _page(request, "orders", **f)


@router.get("/positions")
async def list_positions(request: Request, _c: Viewer, f: Filters) -> dict[str, Any]:
    return await _page(request, "positions", **f)


@router.get("/trades")
async def list_trades(request: Request, _c: Viewer, f: Filters) -> dict[str, Any]:
    return await _page(request, "trades", **f)
