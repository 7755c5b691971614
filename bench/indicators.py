"""Benchmark: the whole indicator set (EMA 8/13/21/48/200, ATR 14, Bollinger 20/2,
Keltner 20/1.5, TTM squeeze on/off and momentum) over >= 1,000,000 float64 bars, ours
(`engine.indicators.compute_indicators`) against TA-Lib computing the same set on the same
arrays. Both outputs are checked equal before anything is timed.

Run from the repo root: `.venv/bin/python bench/indicators.py [--smoke]`.
The last line printed is one JSON object; ratio = ours_ms / talib_ms (goal <= 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import talib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.indicators import IndicatorArrays, compute_indicators  # noqa: E402

FloatArray = npt.NDArray[np.float64]
Bars = tuple[FloatArray, FloatArray, FloatArray]

FULL_BARS = 1_000_000
SMOKE_BARS = 5_000
GOAL_RATIO_MAX = 2.0
TOLERANCE = 1e-9  # relative, and absolute in units of the median close
DATA_CANDIDATES = (
    ROOT / "data" / "bars_1m.parquet",
    ROOT.parent / "shared" / "data" / "bars_1m.parquet",
)


def spy_steps() -> tuple[FloatArray, FloatArray, FloatArray] | None:
    """Real SPY minute bars as (close-to-close log return, log(high/close), log(low/close)),
    without each New York trading day's first bar (the overnight gap, and the 2013 → 2023
    jump in the file); None if the data file is absent."""
    path = next((p for p in DATA_CANDIDATES if p.exists()), None)
    if path is None:
        return None
    import polars as pl

    spy = pl.read_parquet(path).filter(pl.col("symbol") == "SPY").sort("ts")
    day = spy["ts"].dt.convert_time_zone("America/New_York").dt.date().to_numpy()
    close, high, low = (spy[k].to_numpy() for k in ("close", "high", "low"))
    same_session = day[1:] == day[:-1]
    returns = np.diff(np.log(close))[same_session]
    return returns, np.log(high / close)[1:][same_session], np.log(low / close)[1:][same_session]


def make_bars(count: int, seed: int = 20240601) -> Bars:
    """`count` bars by a seeded bootstrap random walk over the real SPY minute bars: each
    bar draws one real bar's return (demeaned, so the walk does not drift off) and its
    high/low around the close. Falls back to a seeded Gaussian random walk with similar
    scale if the data file is absent."""
    rng = np.random.default_rng(seed)
    steps = spy_steps()
    if steps is None:
        returns = rng.normal(0.0, 4e-4, count)
        up, down = np.abs(rng.normal(0.0, 2e-4, (2, count)))
        highs, lows = up, -down
    else:
        pick = rng.integers(0, steps[0].size, count)
        returns = steps[0][pick] - steps[0].mean()
        highs, lows = steps[1][pick], steps[2][pick]
    close = 167.65 * np.exp(np.cumsum(returns))
    return close * np.exp(highs), close * np.exp(lows), close


def talib_set(high: FloatArray, low: FloatArray, close: FloatArray) -> dict[str, npt.NDArray[Any]]:
    """The same set from TA-Lib, composed the way a TA-Lib user would (BBANDS' middle
    line reused as SMA 20, as ours reuses it)."""
    out: dict[str, npt.NDArray[Any]] = {
        f"ema{n}": talib.EMA(close, n) for n in (8, 13, 21, 48, 200)
    }
    out["atr14"] = talib.ATR(high, low, close, 14)
    # matype 0 (SMA), the default: population standard deviation around SMA 20
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = talib.BBANDS(close, 20, 2.0, 2.0)
    kc_middle = talib.EMA(close, 20)
    kc_width = 1.5 * talib.ATR(high, low, close, 20)
    out["kc_middle"] = kc_middle
    out["kc_upper"] = kc_middle + kc_width
    out["kc_lower"] = kc_middle - kc_width
    out["squeeze_on"] = (out["bb_upper"] < out["kc_upper"]) & (out["bb_lower"] > out["kc_lower"])
    donchian = (talib.MAX(high, 20) + talib.MIN(low, 20)) / 2.0
    out["momentum"] = talib.LINEARREG(close - (donchian + out["bb_middle"]) / 2.0, 20)
    return out


def verify(ours: IndicatorArrays, ref: dict[str, npt.NDArray[Any]], scale: float) -> None:
    """Assert every output of ours equals TA-Lib's within TOLERANCE (NaN where TA-Lib's is
    NaN); squeeze flags must match except where the two bands tie within tolerance."""
    atol = TOLERANCE * scale
    for name, expected in ref.items():
        actual = getattr(ours, name)
        if name == "squeeze_on":
            continue
        np.testing.assert_allclose(actual, expected, rtol=TOLERANCE, atol=atol, err_msg=name)
    margin = np.minimum(
        np.abs(ref["kc_upper"] - ref["bb_upper"]), np.abs(ref["bb_lower"] - ref["kc_lower"])
    )
    clear = ~(margin <= 4 * atol)  # NaN margins (warm-up) count as clear: both say False
    assert np.array_equal(ours.squeeze_on[clear], ref["squeeze_on"][clear]), "squeeze_on"


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` calls, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_BARS} bars, 3 repeats")
    args = parser.parse_args()
    count, repeats = (SMOKE_BARS, 3) if args.smoke else (FULL_BARS, 15)
    high, low, close = make_bars(count)
    verify(compute_indicators(high, low, close), talib_set(high, low, close), np.median(close))

    ours_times, talib_times = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        ours_times.append(best_ms(lambda: compute_indicators(high, low, close), 1))
        talib_times.append(best_ms(lambda: talib_set(high, low, close), 1))
    ours_ms, talib_ms = min(ours_times), min(talib_times)
    print(f"bars: {count:,}  repeats: {repeats} (best of each, interleaved)")
    print(f"ours  (engine.indicators.compute_indicators): {ours_ms:8.2f} ms")
    print(f"TA-Lib (same set, same arrays):               {talib_ms:8.2f} ms")
    result = {
        "bench": "indicators",
        "bars": count,
        "ours_ms": round(ours_ms, 2),
        "talib_ms": round(talib_ms, 2),
        "ratio": round(ours_ms / talib_ms, 3),
        "goal_ratio_max": GOAL_RATIO_MAX,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
