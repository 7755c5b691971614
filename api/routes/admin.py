"""Admin API: risk limits and exit rules. Viewers read them; only admins change them.

A change is checked twice: here by name, type and range (pydantic; a 400 lists every bad
field), then by the Store actor, which builds the engine's `RiskLimits` / `ExitRules` from
the merged rows and writes the rows, their `audit_log` entries and "audit" events in one
transaction. Values are fractions per 1.00 where the name ends in `_pct` (0.05 = 5 %).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from api.auth import require
from engine.tokens import Role, TokenClaims

router = APIRouter(tags=["admin"])
Viewer = Annotated[TokenClaims, Depends(require(Role.VIEWER))]
Admin = Annotated[TokenClaims, Depends(require(Role.ADMIN))]


def _number(value: Any) -> Any:
    """JSON numbers only: lax parsing would otherwise take `true` or `"3"`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Count = Annotated[int, BeforeValidator(_number), Field(ge=0)]
Amount = Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)]
Ratio = Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, BeforeValidator(_number), Field(gt=0, le=1, allow_inf_nan=False)]
V = TypeVar("V")


class _Changes(BaseModel):
    """Only the names given change; a name given must carry a value (not null)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("no changes given")
        return self


class RiskLimitChanges(_Changes):
    """`PUT /risk-limits`: counts are whole numbers, `per_trade_risk_pct` is in (0, 1]."""

    max_open_positions: Count | None = None
    max_positions_per_symbol: Count | None = None
    capital_available: Amount | None = None
    per_trade_risk_pct: Fraction | None = None


class RuleChange(_Changes, Generic[V]):
    """One exit rule's change: `{"value": v, "enabled": b}` (either), or a bare number
    meaning the value with `enabled` unchanged."""

    value: V | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_value(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {"value": data}


class ExitRuleChanges(_Changes):
    """`PUT /exit-rules`: `stop_loss_pct` is in (0, 1], `profit_target_pct` > 0 (1.0: the
    premium doubled), `dte_threshold_days` a whole number, minutes >= 0."""

    profit_target_pct: RuleChange[Ratio] | None = None
    stop_loss_pct: RuleChange[Fraction] | None = None
    time_stop_minutes: RuleChange[Amount] | None = None
    dte_threshold_days: RuleChange[Count] | None = None
    session_end_minutes_before_close: RuleChange[Amount] | None = None


async def _rows(request: Request, table: str) -> dict[str, Any]:
    rows = await request.app.state.backend.call_store("settings", table)
    return {"items": jsonable_encoder(rows)}


async def _change(
    request: Request, claims: TokenClaims, table: str, changes: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    backend = request.app.state.backend
    rows = await backend.call_store(
        "update_settings", table, changes, claims.subject, backend.clock.now()
    )
    return {"items": jsonable_encoder(rows)}


@router.get("/risk-limits")
async def risk_limits(request: Request, _c: Viewer) -> dict[str, Any]:
    """Every risk limit: name, value, description, updated_by, updated_at."""
    return await _rows(request, "risk_limits")


@router.put("/risk-limits")
async def change_risk_limits(
    request: Request, claims: Admin, body: RiskLimitChanges
) -> dict[str, Any]:
    """Change some limits (audited); answers every limit as it now is."""
    given = body.model_dump(exclude_unset=True)
    return await _change(
        request, claims, "risk_limits", {n: {"value": v} for n, v in given.items()}
    )


@router.get("/exit-rules")
async def exit_rules(request: Request, _c: Viewer) -> dict[str, Any]:
    """Every exit rule: name, value, enabled, description, updated_by, updated_at."""
    return await _rows(request, "exit_rules")


@router.put("/exit-rules")
async def change_exit_rules(
    request: Request, claims: Admin, body: ExitRuleChanges
) -> dict[str, Any]:
    """Change some exit rules (audited); answers every rule as it now is."""
    return await _change(request, claims, "exit_rules", body.model_dump(exclude_unset=True))
