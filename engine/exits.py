"""Exit rules: which rule, if any, says a marked position must close now.

Each rule is off when its value is None. Thresholds are inclusive:

| reason          | fires when                                                          |
|-----------------|---------------------------------------------------------------------|
| `stop_loss`     | pnl_ratio <= −stop_loss_pct            (0.5: lost half the premium) |
| `profit_target` | pnl_ratio >= profit_target_pct         (1.0: premium doubled)       |
| `dte_threshold` | days from the New York date of now to expiry <= dte_threshold_days  |
| `session_end`   | now >= session close − session_end_minutes_before_close             |
| `time_stop`     | now − opened_at >= time_stop_minutes                                |

When several fire at once the FIRST in that order (`EXIT_PRIORITY`) is the reason: the
price rules name what happened to the money (and `stop_loss` is what StoplossGuard
counts), then the contract's life, the session, the holding time. pnl_ratio comparisons
allow `RATIO_TOLERANCE` so that e.g. 2.00 → 3.00 is exactly a 50 % target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from engine.calendar import NEW_YORK
from engine.clock import ensure_utc
from engine.errors import Fatal
from engine.positions import MarkedPosition

STOP_LOSS = "stop_loss"
PROFIT_TARGET = "profit_target"
DTE_THRESHOLD = "dte_threshold"
SESSION_END = "session_end"
TIME_STOP = "time_stop"
EXIT_PRIORITY = (STOP_LOSS, PROFIT_TARGET, DTE_THRESHOLD, SESSION_END, TIME_STOP)
RATIO_TOLERANCE = 1e-12
NO_EXIT = -1


@dataclass(frozen=True, slots=True)
class ExitRules:
    """Exit thresholds; None disables a rule. Ratios per 1.00 of the entry price."""

    profit_target_pct: float | None = None
    stop_loss_pct: float | None = None
    time_stop_minutes: float | None = None
    dte_threshold_days: int | None = None
    session_end_minutes_before_close: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise Fatal(f"exit rule {f.name} must be >= 0 or off, got {value!r}")
        if self.stop_loss_pct == 0 or self.profit_target_pct == 0:
            raise Fatal("a 0 stop_loss_pct or profit_target_pct would exit at once; use None")

    @classmethod
    def from_rows(cls, rows: Mapping[str, tuple[float, bool]]) -> ExitRules:
        """From the `exit_rules` table: name → (value, enabled). Unknown names are Fatal."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, float | int | None] = {}
        for name, (value, enabled) in rows.items():
            if name not in known:
                raise Fatal(f"unknown exit rule {name!r}", hint=f"known: {sorted(known)}")
            as_int = name == "dte_threshold_days"
            values[name] = (int(value) if as_int else float(value)) if enabled else None
        return cls(**values)  # type: ignore[arg-type]


def exit_reason(
    marked: MarkedPosition,
    now: datetime,
    expiry: date | None,
    session_close: datetime | None,
    rules: ExitRules,
) -> str | None:
    """The first exit reason in `EXIT_PRIORITY` that fires, or None to hold.

    `expiry` None (shares) skips the DTE rule; `session_close` None (outside a session)
    skips the session rule.
    """
    utc = ensure_utc(now)
    ratio = marked.pnl_ratio
    checks = (
        rules.stop_loss_pct is not None and ratio <= -rules.stop_loss_pct + RATIO_TOLERANCE,
        rules.profit_target_pct is not None and ratio >= rules.profit_target_pct - RATIO_TOLERANCE,
        rules.dte_threshold_days is not None
        and expiry is not None
        and (expiry - utc.astimezone(NEW_YORK).date()).days <= rules.dte_threshold_days,
        rules.session_end_minutes_before_close is not None
        and session_close is not None
        and utc
        >= ensure_utc(session_close) - timedelta(minutes=rules.session_end_minutes_before_close),
        rules.time_stop_minutes is not None
        and utc - marked.position.opened_at >= timedelta(minutes=rules.time_stop_minutes),
    )
    for reason, fired in zip(EXIT_PRIORITY, checks, strict=True):
        if fired:
            return reason
    return None


def exit_codes(
    pnl_ratio: npt.ArrayLike,
    days_to_expiry: npt.ArrayLike,
    minutes_to_close: npt.ArrayLike,
    minutes_held: npt.ArrayLike,
    rules: ExitRules,
) -> npt.NDArray[np.int64]:
    """Vectorised `exit_reason` for backtests: an index into `EXIT_PRIORITY` per row, or -1.

    Arrays broadcast together. A NaN days_to_expiry (shares) or minutes_to_close
    (outside a session) disables that rule for the row, as None does in `exit_reason`.
    """
    ratio, dte, to_close, held = (
        np.asarray(a, dtype=np.float64)
        for a in (pnl_ratio, days_to_expiry, minutes_to_close, minutes_held)
    )
    never = np.zeros(np.broadcast(ratio, dte, to_close, held).shape, dtype=bool)
    fired = [
        never | (ratio <= -rules.stop_loss_pct + RATIO_TOLERANCE)
        if rules.stop_loss_pct is not None
        else never,
        never | (ratio >= rules.profit_target_pct - RATIO_TOLERANCE)
        if rules.profit_target_pct is not None
        else never,
        never | (dte <= rules.dte_threshold_days)
        if rules.dte_threshold_days is not None
        else never,
        never | (to_close <= rules.session_end_minutes_before_close)
        if rules.session_end_minutes_before_close is not None
        else never,
        never | (held >= rules.time_stop_minutes) if rules.time_stop_minutes is not None else never,
    ]
    codes = np.full(never.shape, NO_EXIT, dtype=np.int64)
    for index in range(len(EXIT_PRIORITY) - 1, -1, -1):
        codes = np.where(fired[index], index, codes)
    return codes
