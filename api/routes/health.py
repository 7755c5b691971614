"""GET /health: each component's status with uptime; 503 when one is down."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.backend import ActorBackend
from api.deps import get_backend

router = APIRouter()


@router.get("/livez")
async def livez() -> dict[str, str]:
    """Liveness of the HTTP front door alone (no actor call): for load balancers."""
    return {"status": "alive"}


@router.get("/health")
async def health(backend: Annotated[ActorBackend, Depends(get_backend)]) -> JSONResponse:
    components = await backend.health()
    now = backend.clock.now()
    ok = all(c.ok for c in components.values())
    body: dict[str, Any] = {
        "status": "ok" if ok else "degraded",
        "uptime_s": round((now - backend.started_at).total_seconds(), 3),
        "checked_at": now.isoformat(),
        "components": {
            name: {
                "status": "up" if c.ok else "down",
                "detail": c.detail,
                "checked_at": c.checked_at.isoformat(),
            }
            for name, c in components.items()
        },
    }
    return JSONResponse(_jsonable(body), status_code=200 if ok else 503)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
