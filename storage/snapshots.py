"""Enrichment snapshots: what Engine 2's agents saw for one signal, as a Parquet file named by
its SHA-256, so `tandem replay --experiment` can recompute every decision from the log.

The bars (1-minute, the signal's timeframe, daily) are the file's rows; the other fields
(signal, session, portfolio) are JSON in the file's metadata. Reading it back gives an
`Enrichment` equal to the one written, so its digest is the one the log recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.agents.base import Enrichment
from engine.marketdata import Bar, Right
from engine.positions import Position
from engine.risk import RiskLimits

BAR_SCHEMA = pa.schema(
    [
        ("series", pa.string()),
        ("symbol", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
    ]
)
SERIES = ("bars_1m", "bars_tf", "bars_1d")
META_KEY = b"tandem.enrichment"


def write_snapshot(directory: Path, enrichment: Enrichment, digest: str) -> Path:
    """Write the snapshot as `<digest>.parquet` (once: the name is its content's hash)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{digest}.parquet"
    if path.exists():
        return path
    rows = [{"series": name, **asdict(bar)} for name in SERIES for bar in getattr(enrichment, name)]
    meta = {
        k: v for k, v in asdict(enrichment).items() if k not in SERIES and k != "open_positions"
    }
    meta["open_positions"] = [asdict(p) for p in enrichment.open_positions]
    table = pa.Table.from_pylist(rows, schema=BAR_SCHEMA).replace_schema_metadata(
        {META_KEY: json.dumps(meta, default=_text).encode()}
    )
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_snapshot(path: Path) -> Enrichment:
    table = pq.read_table(path)
    meta: dict[str, Any] = json.loads((table.schema.metadata or {})[META_KEY])
    series: dict[str, list[Bar]] = {name: [] for name in SERIES}
    for row in table.to_pylist():
        name = row.pop("series")
        series[name].append(Bar(**row))
    return Enrichment(
        signal_id=int(meta["signal_id"]),
        symbol=meta["symbol"],
        direction=meta["direction"],
        timeframe=meta["timeframe"],
        as_of=datetime.fromisoformat(meta["as_of"]),
        bars_1m=tuple(series["bars_1m"]),
        bars_1d=tuple(series["bars_1d"]),
        session_open=datetime.fromisoformat(meta["session_open"]),
        session_close=datetime.fromisoformat(meta["session_close"]),
        market_open=bool(meta["market_open"]),
        open_positions=tuple(_position(p) for p in meta["open_positions"]),
        limits=RiskLimits(**meta["limits"]),
        capital_needed=float(meta["capital_needed"]),
        realised_drawdown_pct=float(meta["realised_drawdown_pct"]),
        bars_tf=tuple(series["bars_tf"]),
    )


def _text(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot snapshot {type(value).__name__}")


def _position(p: dict[str, Any]) -> Position:
    return Position(
        **{
            **p,
            "opened_at": datetime.fromisoformat(p["opened_at"]),
            "expiry": None if p["expiry"] is None else date.fromisoformat(p["expiry"]),
            "right": None if p["right"] is None else Right(p["right"]),
        }
    )
