"""Regenerate the bundled replay alerts: rule `ema-cross-5m` on SPY of scenario `spy-2013-10`.

Run from the repository root: `.venv/bin/python data/alerts/generate.py` writes
`data/alerts/spy-2013-10.ema-cross-5m.json` (byte-identical on every run);
`--check` only compares and exits 1 when the file differs from a fresh generation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.alert_rules import (  # noqa: E402
    EMA_CROSS_5M,
    PRICE_DECIMALS,
    generate_alerts,
    render_alerts_json,
)
from engine.scenarios import get_scenario  # noqa: E402

SCENARIO = "spy-2013-10"
SYMBOL = "SPY"
MINUTE_BARS = ROOT / "data" / "bars_1m.parquet"
OUTPUT = Path(__file__).resolve().parent / f"{SCENARIO}.{EMA_CROSS_5M}.json"


def load_minute_bars(
    path: Path, symbol: str, scenario: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(open times in epoch microseconds, closes) of `symbol`'s minute bars on the New
    York dates of `scenario`'s sessions, oldest first (extended hours included). Closes
    are rounded to 4 decimals (the data's precision), as the replay serves them."""
    sessions = list(get_scenario(scenario).sessions)
    frame = (
        pl.scan_parquet(path)
        .filter(pl.col("symbol") == symbol)
        .filter(pl.col("ts").dt.convert_time_zone("America/New_York").dt.date().is_in(sessions))
        .sort("ts")
        .select(pl.col("ts").dt.epoch("us").alias("ts_us"), "close")
        .collect()
    )
    close = np.round(frame["close"].to_numpy().astype(np.float64), PRICE_DECIMALS)
    return frame["ts_us"].to_numpy().astype(np.int64), close


def build(path: Path = MINUTE_BARS) -> list[dict[str, object]]:
    """The bundled alerts, generated afresh from the minute bars at `path`."""
    ts_us, close = load_minute_bars(path, SYMBOL, SCENARIO)
    return generate_alerts(ts_us, close, symbol=SYMBOL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args(argv)
    alerts = build()
    data = render_alerts_json(alerts).encode("utf-8")
    if args.check:
        same = OUTPUT.is_file() and OUTPUT.read_bytes() == data
        print(f"{OUTPUT.name}: {'up to date' if same else 'DIFFERS from a fresh generation'}")
        return 0 if same else 1
    OUTPUT.write_bytes(data)
    entries = sum(a["action"] == "entry" for a in alerts)
    print(f"wrote {OUTPUT.name}: {entries} entries, {len(alerts) - entries} exits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
