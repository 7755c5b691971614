"""What a strategy is: its parameters, the minute bars it reads and the alerts it writes.

A strategy turns one symbol's minute bars into TradingView strategy alerts, the same
dicts `engine.alert_rules` writes (`symbol`, `direction`, `timeframe`, `timestamp` = the
bar's open, `action`, `market_position`, `prev_market_position`, `price`, `strategy`,
`comment`), over the whole series at once. Rules and the pipeline: docs/strategies.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from engine.clock import ensure_utc
from engine.errors import Rejected
from engine.marketdata import Bar

if TYPE_CHECKING:
    import polars as pl

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Alert = dict[str, object]
Problem = dict[str, str]
ParamKind = Literal["int", "float", "bool"]
ParamValue = int | float | bool
CrossRules = Callable[[Mapping[str, object]], list[Problem]]

INVALID_PARAMETERS: Final = "invalid_parameters"
MINUTE_US: Final = 60_000_000
FRAME_COLUMNS: Final = ("symbol", "ts", "open", "high", "low", "close", "volume")
_NEVER: Final = int(np.iinfo(np.int64).min)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_OHLCV: Final = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: `kind` int, float or bool; `low`..`high` inclusive bounds (numbers)."""

    name: str
    kind: ParamKind
    default: ParamValue
    low: float | None = None
    high: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"parameter {self.name}: low {self.low} > high {self.high}")
        value, problem = self.coerce(self.default)
        if problem is not None or value != self.default:
            raise ValueError(f"parameter {self.name}: default {self.default!r} {problem}")
        object.__setattr__(self, "default", value)  # 1 -> 1.0 for a float

    def coerce(self, value: object) -> tuple[ParamValue, str | None]:
        """(the value as `kind`, None) or (the default, why the value is refused)."""
        typed = _typed(self.kind, value)
        if typed is None:
            return self.default, _KIND_PROBLEM[self.kind]
        if self.kind != "bool" and not _within(float(typed), self.low, self.high):
            return self.default, _range_problem(self.low, self.high)
        return typed, None


_KIND_PROBLEM: Final = {
    "int": "must be an integer",
    "float": "must be a finite number",
    "bool": "must be true or false",
}


def _typed(kind: ParamKind, value: object) -> ParamValue | None:
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool | np.bool_):
        return None
    if kind == "int":
        return int(value) if isinstance(value, int | np.integer) else None
    if isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value):
        return float(value)
    return None


def _within(x: float, low: float | None, high: float | None) -> bool:
    return (low is None or x >= low) and (high is None or x <= high)


def _range_problem(low: float | None, high: float | None) -> str:
    if low is None:
        return f"must be at most {_number(high)}"
    if high is None:
        return f"must be at least {_number(low)}"
    return f"must be between {_number(low)} and {_number(high)}"


def _number(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def validate_params(
    params: Sequence[Param], values: Mapping[str, object], cross: CrossRules | None = None
) -> dict[str, object]:
    """`values` checked against `params`: defaults filled in, each value of its kind and
    within its bounds, then the cross-parameter rules (only when every field is valid).
    Returns the values in the order of `params`.

    Raises `Rejected("invalid_parameters", [{"field", "problem"}, ...])` listing every
    problem: unknown names, wrong kinds, values out of bounds, broken cross rules.
    """
    known = {p.name for p in params}
    problems = [
        {"field": str(k), "problem": "unknown parameter"}
        for k in sorted(values, key=str)
        if k not in known
    ]
    out: dict[str, object] = {}
    for p in params:
        value, problem = p.coerce(values[p.name]) if p.name in values else (p.default, None)
        out[p.name] = value
        if problem is not None:
            problems.append({"field": p.name, "problem": problem})
    if not problems and cross is not None:
        problems = cross(out)
    if problems:
        raise Rejected(INVALID_PARAMETERS, problems)
    return out


def int_value(values: Mapping[str, object], name: str) -> int:
    """A validated int parameter."""
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"parameter {name} is not a validated int: {value!r}")
    return value


def float_value(values: Mapping[str, object], name: str) -> float:
    """A validated float parameter."""
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"parameter {name} is not a validated float: {value!r}")
    return float(value)


def bool_value(values: Mapping[str, object], name: str) -> bool:
    """A validated bool parameter."""
    value = values[name]
    if not isinstance(value, bool):
        raise TypeError(f"parameter {name} is not a validated bool: {value!r}")
    return value


def _readonly_copy(x: npt.ArrayLike, dtype: type[np.generic], name: str) -> npt.NDArray[Any]:
    arr: npt.NDArray[Any] = np.array(x, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class MinuteBars:
    """One symbol's minute bars as read-only arrays, oldest first.

    `ts_us` holds the bars' OPEN times in epoch microseconds (UTC), strictly ascending;
    extended-hours bars may be included (strategies keep regular hours). `as_of_us` is
    how far the data is known (epoch microseconds): `known_until_us` if given, else the
    newest bar's close (`ts_us[-1]` + 1 minute), never earlier. A strategy's bar counts
    only once its slot has ended by then.
    """

    symbol: str
    ts_us: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    known_until_us: int | None = None

    def __post_init__(self) -> None:
        ts = _readonly_copy(self.ts_us, np.int64, "ts_us")
        object.__setattr__(self, "ts_us", ts)
        for name in _OHLCV:
            arr = _readonly_copy(getattr(self, name), np.float64, name)
            if arr.shape != ts.shape:
                raise ValueError(f"{name} has {arr.size} values for {ts.size} bar times")
            object.__setattr__(self, name, arr)
        if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            raise ValueError("minute bar times must be strictly ascending")
        if self.known_until_us is not None and self.known_until_us < self.newest_close_us:
            raise ValueError("known_until_us is before the newest bar's close")

    @property
    def newest_close_us(self) -> int:
        """The newest bar's close (its open + 1 minute); the int64 minimum when empty."""
        return int(self.ts_us[-1]) + MINUTE_US if self.ts_us.size else _NEVER

    @property
    def as_of_us(self) -> int:
        """How far the data is known: `known_until_us`, else the newest bar's close."""
        return self.newest_close_us if self.known_until_us is None else self.known_until_us

    def __len__(self) -> int:
        return int(self.ts_us.size)

    def head(self, n: int) -> MinuteBars:
        """The first `n` bars, known up to the close of the last of them (a live window)."""
        return MinuteBars(
            self.symbol,
            self.ts_us[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
        )

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, symbol: str | None = None, known_until_us: int | None = None
    ) -> MinuteBars:
        """From a polars frame with columns symbol, ts (an aware Datetime), open, high,
        low, close, volume; sorted by ts here. The frame must hold one symbol, or
        `symbol` picks one."""
        import polars as pl

        missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks the columns {missing}")
        dtype = frame.schema["ts"]
        if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
            raise ValueError(f"ts must be a timezone-aware Datetime, got {dtype}")
        if symbol is not None:
            frame = frame.filter(pl.col("symbol") == symbol)
        symbols = frame["symbol"].unique().to_list()
        if len(symbols) != 1:
            raise ValueError(f"the frame must hold exactly one symbol, got {sorted(symbols)}")
        frame = frame.sort("ts").with_columns(pl.col("ts").dt.epoch("us").alias("ts_us"))
        return cls(
            str(symbols[0]),
            frame["ts_us"].to_numpy(),
            frame["open"].to_numpy(),
            frame["high"].to_numpy(),
            frame["low"].to_numpy(),
            frame["close"].to_numpy(),
            frame["volume"].to_numpy(),
            known_until_us,
        )

    @classmethod
    def from_bars(
        cls, symbol: str, bars: Sequence[Bar], known_until_us: int | None = None
    ) -> MinuteBars:
        """From `engine.marketdata.Bar`s (aware UTC open times) of `symbol`, oldest first."""
        ts = [(ensure_utc(b.ts) - _EPOCH) // timedelta(microseconds=1) for b in bars]
        return cls(
            symbol,
            np.array(ts, np.int64),
            np.array([b.open for b in bars], np.float64),
            np.array([b.high for b in bars], np.float64),
            np.array([b.low for b in bars], np.float64),
            np.array([b.close for b in bars], np.float64),
            np.array([b.volume for b in bars], np.float64),
            known_until_us,
        )


class Strategy(Protocol):
    """A named, versioned rule from minute bars to TradingView alerts (pure, no I/O).

    `alerts` covers the whole series given; `latest` is the live form: the alerts of the
    bars that completed with the window's newest minute bar, so calling it on a window
    that grows one minute bar at a time yields exactly the whole series' alerts. Both
    validate `params` first (`validate`: defaults filled in; `Rejected` with code
    `invalid_parameters` listing `{field, problem}`).
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def params(self) -> tuple[Param, ...]: ...

    def validate(self, values: Mapping[str, object]) -> dict[str, object]: ...

    def alerts(self, bars: MinuteBars, params: Mapping[str, object]) -> list[Alert]: ...

    def latest(self, bars: MinuteBars, params: Mapping[str, object]) -> list[Alert]: ...
