"""Engine 2's analytics API (viewer role, paged): experiments, their results, agent
performance, shadow trades and positions. Every answer is a DuckDB query over the Parquet
event log (`engine/analytics.py`, the same SQL as the notebook), run by the Analytics
actor, never in this process."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from api.auth import require
from engine import analytics as an
from engine.read_models import MAX_PAGE
from engine.tokens import Role, TokenClaims

router = APIRouter(tags=["experiments"])
Viewer = Annotated[TokenClaims, Depends(require(Role.VIEWER))]


def _filters(
    *,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    experiment_id: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> an.ListFilter:
    return an.ListFilter(
        experiment_id=experiment_id,
        symbol=symbol.upper() if symbol else None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


Filters = Annotated[an.ListFilter, Depends(_filters)]


async def _page(request: Request, method: str, filters: an.ListFilter) -> dict[str, Any]:
    rows = await request.app.state.backend.call_analytics(method, filters)
    return {"items": jsonable_encoder(rows), "limit": filters.limit, "offset": filters.offset}


@router.get("/experiments")
async def list_experiments(
    request: Request, _c: Viewer, f: Filters, variant: Literal["A", "B"] | None = None
) -> dict[str, Any]:
    """Assignment records (experiment, signal, variant, bucket, unit), newest first."""
    return await _page(request, "experiments", _with(f, variant=variant))


@router.get("/experiments/{experiment_id}/results")
async def experiment_results(request: Request, _c: Viewer, experiment_id: str) -> Any:
    """A vs B, and Engine 1 on B's signals (paired), with significance."""
    found = await request.app.state.backend.call_analytics("results", experiment_id)
    return jsonable_encoder(found)


@router.get("/agents/performance")
async def agents_performance(
    request: Request, _c: Viewer, f: Filters, agent: str | None = None
) -> dict[str, Any]:
    """Per agent: activations, win rate, expectancy, calibration by confidence, Brier."""
    return await _page(request, "agents", _with(f, agent=agent))


@router.get("/shadow-trades")
async def shadow_trades(
    request: Request, _c: Viewer, f: Filters, agent: str | None = None
) -> dict[str, Any]:
    return await _page(request, "shadow_trades", _with(f, agent=agent))


@router.get("/shadow-positions")
async def shadow_positions(
    request: Request, _c: Viewer, f: Filters, status: Literal["open", "closed"] | None = None
) -> dict[str, Any]:
    return await _page(request, "shadow_positions", _with(f, status=status))


def _with(filters: an.ListFilter, **more: Any) -> an.ListFilter:
    return replace(filters, **more)
