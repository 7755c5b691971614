"""Feature flags and experiment settings: viewers read them; only admins change them.

As for the other admin settings (`api/routes/admin.py`), a change is checked here by name
and type (a 400 lists every bad field), then by the Store actor, which builds the engine's
`FeatureFlags` / `ExperimentSettings` from the merged rows and writes the rows, their
`audit_log` entries and "audit" events in one transaction. The known flags are
`engine.flags.KNOWN_FLAGS`; there is no flag for the core agents (Technical, Context, Risk).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BeforeValidator, Field, StrictBool, model_validator

from api.routes.admin import Admin, Viewer, _Changes, _number
from engine.errors import NotFound
from engine.flags import KNOWN_FLAGS
from engine.tokens import TokenClaims

router = APIRouter(tags=["admin"])

FLAGS = "feature_flags"
EXPERIMENT = "experiment_settings"
Symbol = Annotated[str, Field(min_length=1, max_length=21)]
Percent = Annotated[int, BeforeValidator(_number), Field(ge=0, le=100)]


class FlagChange(_Changes):
    """One flag's change: `{"enabled": b, "whitelist": ["SPY", ...]}` (either; an empty
    whitelist means every symbol), or a bare true/false meaning `enabled`."""

    enabled: StrictBool | None = None
    whitelist: list[Symbol] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_enabled(cls, data: Any) -> Any:
        return {"enabled": data} if isinstance(data, bool) else data


class FlagChanges(_Changes):
    """`POST /feature-flags`: a map `{name: change}` or a list `[{"name": n, ...change}]`;
    every name must be a known flag (one field per `KNOWN_FLAGS` name)."""

    enable_variant_b: FlagChange | None = None
    enable_orb: FlagChange | None = None
    enable_strat: FlagChange | None = None
    enable_ttm: FlagChange | None = None
    enable_satyland: FlagChange | None = None
    enable_futures: FlagChange | None = None

    @model_validator(mode="before")
    @classmethod
    def _list_to_map(cls, data: Any) -> Any:
        if not isinstance(data, list):
            return data
        out: dict[str, Any] = {}
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError('each change in a list is an object with a "name"')
            name = item["name"]
            if name in out:
                raise ValueError(f"{name} is given twice")
            out[name] = {k: v for k, v in item.items() if k != "name"}
        return out


class ExperimentChanges(_Changes):
    """`PUT /experiment-settings`: `split_pct` is the whole percent (0-100) of signals
    sent to variant B while `enable_variant_b` is on."""

    split_pct: Percent | None = None


async def _rows(request: Request, table: str) -> list[dict[str, Any]]:
    rows = await request.app.state.backend.call_store("settings", table)
    return list(jsonable_encoder(rows))


async def _change(
    request: Request, claims: TokenClaims, table: str, changes: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    backend = request.app.state.backend
    rows = await backend.call_store(
        "update_settings", table, changes, claims.subject, backend.clock.now()
    )
    return list(jsonable_encoder(rows))


@router.get("/feature-flags")
async def feature_flags(request: Request, _c: Viewer) -> dict[str, Any]:
    """Every flag: name, enabled, description, whitelist (null: all symbols), updated_by,
    updated_at."""
    return {"items": await _rows(request, FLAGS)}


@router.post("/feature-flags")
async def change_feature_flags(
    request: Request, claims: Admin, body: FlagChanges
) -> dict[str, Any]:
    """Change some flags (audited); answers every flag as it now is."""
    changes = {n: c.model_dump(exclude_unset=True) for n, c in body if c is not None}
    return {"items": await _change(request, claims, FLAGS, changes)}


@router.patch("/feature-flags/{name}")
async def change_feature_flag(
    request: Request, claims: Admin, name: str, body: FlagChange
) -> dict[str, Any]:
    """Change one flag (audited); answers the flag as it now is. Unknown name: 404."""
    if name not in KNOWN_FLAGS:
        raise NotFound("unknown_flag", f"no feature flag {name!r}; known: {list(KNOWN_FLAGS)}")
    rows = await _change(request, claims, FLAGS, {name: body.model_dump(exclude_unset=True)})
    return next(row for row in rows if row["name"] == name)


@router.get("/experiment-settings")
async def experiment_settings(request: Request, _c: Viewer) -> dict[str, Any]:
    """Every run-time experiment setting (`split_pct`): name, value, description,
    updated_by, updated_at."""
    return {"items": await _rows(request, EXPERIMENT)}


@router.put("/experiment-settings")
async def change_experiment_settings(
    request: Request, claims: Admin, body: ExperimentChanges
) -> dict[str, Any]:
    """Change the split (audited); answers every setting as it now is."""
    given = body.model_dump(exclude_unset=True)
    changes = {n: {"value": v} for n, v in given.items()}
    return {"items": await _change(request, claims, EXPERIMENT, changes)}


KILL = "kill_switch"


class KillSwitchChange(_Changes):
    """`PUT /kill-switch`: `{"on": true}` stops every engine from opening a position."""

    on: StrictBool


@router.get("/kill-switch")
async def kill_switch(request: Request, _c: Viewer) -> dict[str, Any]:
    """Whether the kill switch is on, who changed it last and when."""
    (row,) = await _rows(request, KILL)
    return {"on": row["enabled"], "updated_by": row["updated_by"], "updated_at": row["updated_at"]}


@router.put("/kill-switch")
async def change_kill_switch(
    request: Request, claims: Admin, body: KillSwitchChange
) -> dict[str, Any]:
    """Turn the kill switch on or off (audited). While on, alerts are still recorded and
    decided, but no engine opens a position; exits always go through."""
    (row,) = await _change(request, claims, KILL, {KILL: {"enabled": body.on}})
    return {"on": row["enabled"], "updated_by": row["updated_by"], "updated_at": row["updated_at"]}
