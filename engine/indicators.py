"""Technical indicators: batch over whole float64 arrays, and one bar at a time for live use.

Every definition follows TA-Lib (the reference the tests compare against):

- `ema(x, n)`: seeded with the SMA of the first `n` values, alpha = 2/(n+1); NaN before
  index n-1.
- `atr(high, low, close, n)`: Wilder smoothing of the true range. The first value, at
  index n, is the mean of the true ranges at indices 1..n (bar 0 has no previous close).
- `bollinger(close, n, k)`: SMA(n) ± k × population standard deviation (ddof=0), as
  TA-Lib BBANDS with matype=0.
- `keltner(high, low, close, n, k)`: EMA(n) of close ± k × ATR(n).
- `ttm_squeeze(...)`: the squeeze is on while both Bollinger bands lie strictly inside the
  Keltner bands; momentum is LINEARREG(n) of close − ((highest high + lowest low)/2 + SMA)/2.
- `linreg(x, n)`: the endpoint of the least-squares line through the last n values.

Batch functions return arrays as long as their input, NaN where the indicator is not yet
defined (the warm-up). Inputs are expected to be finite, with high >= low; a NaN input
makes every window that holds it NaN, and every later EMA or ATR value. The incremental
classes (`EmaState`, `AtrState`, `RollingWindow`, `IndicatorSet`) give the same numbers as
the batch functions on the same series, bar by bar.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EMA_PERIODS: Final = (8, 13, 21, 48, 200)
ATR_PERIOD: Final = 14
SQUEEZE_PERIOD: Final = 20  # Bollinger, Keltner and the momentum regression share it
BB_MULT: Final = 2.0
KC_MULT: Final = 1.5

# ---------------------------------------------------------------- validation


def _period(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"period must be an integer >= 1, got {n!r}")
    return int(n)


def _series(x: npt.ArrayLike, name: str = "x") -> FloatArray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _bars(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    if not h.size == lo.size == c.size:
        raise ValueError(
            f"high, low and close must have the same length, got {h.size}, {lo.size}, {c.size}"
        )
    return h, lo, c


# ---------------------------------------------------------------- sliding windows

# Windowed statistics are folded by doubling (windows of 1, 2, 4, ... elements, then the
# binary digits of n): O(N log n) whole-array operations and no Python loop over bars;
# each window is a short tree of operations, with no running total whose rounding drifts
# with the series length. The series goes through in chunks, so those operations work on
# small arrays that stay in cache.
_CHUNK: Final = 16_384
_SMOOTH_CHUNK: Final = 65_536

_PHASES: Final = 4  # _smooth_chunk's decimation
Parts = tuple[FloatArray, ...]
Values = Callable[[int, int], FloatArray]
Outputs = tuple[npt.NDArray[Any], ...]
Merge = Callable[[Parts, Parts, int, int], Parts]
Kernel = Callable[[Parts, Outputs], None]


def _window_fold(leaf: Parts, n: int, merge: Merge) -> Parts:
    """Fold every window of n consecutive elements: result[i][j] covers leaf[i][j : j + n].

    `merge(a, b, size_a, size_b)` combines the folds of two adjacent windows, a first.
    For n > 1 the results are new arrays that the caller may change in place.
    """
    length = leaf[0].size - n + 1
    acc: Parts | None = None
    acc_size, size, block = 0, 1, leaf
    while True:
        if n & size:
            part = tuple(a[acc_size : acc_size + length] for a in block)
            acc = part if acc is None else merge(acc, part, acc_size, size)
            acc_size += size
        if 2 * size > n:
            break
        block = merge(tuple(a[:-size] for a in block), tuple(a[size:] for a in block), size, size)
        size *= 2
    assert acc is not None
    return acc


def _merge_sum(a: Parts, b: Parts, size_a: int, size_b: int) -> Parts:
    return (a[0] + b[0],)


def _merge_max(a: Parts, b: Parts, size_a: int, size_b: int) -> Parts:
    return (np.maximum(a[0], b[0]),)


def _merge_min(a: Parts, b: Parts, size_a: int, size_b: int) -> Parts:
    return (np.minimum(a[0], b[0]),)


def _merge_moments(a: Parts, b: Parts, size_a: int, size_b: int) -> Parts:
    """(Σx, M2 = Σ(x − mean)²) of two adjacent windows combined (Chan et al.): no
    cancellation, and exactly 0 for a constant window. A 1-element window's M2 is 0 and
    is not read (the leaf may hold anything there)."""
    if size_a == size_b:
        m2 = b[0] - a[0]
        scale = 0.5 / size_a
    else:
        m2 = b[0] * size_a - a[0] * size_b
        scale = 1.0 / (size_a * size_b * (size_a + size_b))
    m2 *= m2
    m2 *= scale
    if size_a > 1:
        m2 += a[1]
    if size_b > 1:
        m2 += b[1]
    return a[0] + b[0], m2


def _merge_ramp(a: Parts, b: Parts, size_a: int, size_b: int) -> Parts:
    """(Σy, Σk·y with k = 0 at the window's oldest element) of two adjacent windows
    combined. A 1-element window's Σk·y is 0 and is not read."""
    if size_a == 1:
        ramp = b[0] if size_b == 1 else b[0] + b[1]
    else:
        ramp = b[0] * size_a
        ramp += a[1]
        if size_b > 1:
            ramp += b[1]
    return a[0] + b[0], ramp


def _rolling(
    kernel: Kernel, inputs: Parts, window: int, dtypes: tuple[type, ...] = (np.float64,)
) -> list[npt.NDArray[Any]]:
    """Run `kernel` chunk by chunk over aligned inputs; return full-length outputs.

    The kernel gets slices of the inputs (its chunk plus the window−1 values before it)
    and writes one value per complete window into slices of the outputs. Outputs are NaN
    (False for bool) before index window−1.
    """
    size = inputs[0].size
    outs: list[npt.NDArray[Any]] = [np.empty(size, dtype=dtype) for dtype in dtypes]
    lead = min(window - 1, size)
    for out in outs:
        out[:lead] = False if out.dtype == np.bool_ else np.nan
    step = max(_CHUNK, 4 * window)
    for start in range(window - 1, size, step):
        stop = min(start + step, size)
        kernel(
            tuple(x[start - window + 1 : stop] for x in inputs),
            tuple(out[start:stop] for out in outs),
        )
    return outs


def _sum_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    np.divide(_window_fold(inputs, n, _merge_sum)[0], n, out=outs[0])


def _max_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    outs[0][:] = _window_fold(inputs, n, _merge_max)[0]


def _min_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    outs[0][:] = _window_fold(inputs, n, _merge_min)[0]


def _mean_std(x: FloatArray, n: int, mean: FloatArray) -> FloatArray:
    """Mean (written into `mean`) and population standard deviation (returned, a new
    array) of every window x[j : j + n]."""
    if n == 1:
        mean[:] = x
        return np.zeros(x.size)
    total, m2 = _window_fold((x, x), n, _merge_moments)
    np.divide(total, n, out=mean)
    m2 /= n
    return np.sqrt(m2, out=m2)


def _std_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    outs[0][:] = _mean_std(inputs[0], n, np.empty(outs[0].size))


def _bollinger_kernel(n: int, k: float, inputs: Parts, outs: Outputs) -> None:
    upper, middle, lower = outs
    width = _mean_std(inputs[0], n, middle)
    width *= k
    np.add(middle, width, out=upper)
    np.subtract(middle, width, out=lower)


def _linreg_coefficients(n: int) -> tuple[float, float]:
    """(α, β) with α·Σy + β·Σk·y = the least-squares line's value at the newest point
    (k = 0 oldest .. n−1 newest): the weight of y_k is 1/n + 6(k − (n−1)/2)/(n(n+1))."""
    return 2.0 * (2.0 - n) / (n * (n + 1.0)), 6.0 / (n * (n + 1.0))


def _linreg_into(y: FloatArray, n: int, out: FloatArray) -> None:
    if n == 1:
        out[:] = y
        return
    total, ramp = _window_fold((y, y), n, _merge_ramp)
    alpha, beta = _linreg_coefficients(n)
    np.multiply(ramp, beta, out=out)
    total *= alpha
    out += total


def _linreg_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    _linreg_into(inputs[0], n, outs[0])


def _true_range_kernel(inputs: Parts, outs: Outputs) -> None:
    high, low, close = inputs
    prev, out = close[:-1], outs[0]
    np.maximum(high[1:], prev, out=out)
    out -= np.minimum(low[1:], prev)


def _momentum_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    """Window 2n−1 over (high, low, close, SMA n of close): LINEARREG(n) of
    close − ((highest high + lowest low)/2 + SMA)/2."""
    high, low, close, mean = inputs
    delta = _window_fold((high,), n, _merge_max)[0] if n > 1 else high.copy()
    delta += _window_fold((low,), n, _merge_min)[0]
    delta *= 0.5
    delta += mean[n - 1 :]
    delta *= 0.5
    np.subtract(close[n - 1 :], delta, out=delta)
    _linreg_into(delta, n, outs[0])


def _squeeze_kernel(n: int, inputs: Parts, outs: Outputs) -> None:
    """Window n over (close, EMA n, ATR n): Bollinger bands, the Keltner upper band and
    squeeze on. The ATR slice is overwritten with the Keltner lower band (the caller
    hands over that buffer, which saves a full-length temporary)."""
    close, kc_middle, kc_width = inputs[0], inputs[1][n - 1 :], inputs[2][n - 1 :]
    bb_upper, bb_middle, bb_lower, kc_upper, on = outs
    _bollinger_kernel(n, BB_MULT, (close,), (bb_upper, bb_middle, bb_lower))
    kc_width *= KC_MULT
    np.add(kc_middle, kc_width, out=kc_upper)
    np.subtract(kc_middle, kc_width, out=kc_width)
    np.less(bb_upper, kc_upper, out=on)
    on &= bb_lower > kc_width


def _smooth(values: Values, size: int, n: int, alpha: float, lead: int = 0) -> FloatArray:
    """Seeded exponential smoothing of a series of `size` values, which `values(start,
    stop)` hands out a slice at a time: the SMA of the first n values at index n−1, then
    y = αx + (1−α)y. The result has `lead` extra NaNs in front (to align it with a
    longer series).
    """
    out = np.empty(size + lead)
    out[: lead + min(n - 1, size)] = np.nan
    if size < n:
        return out
    y = float(np.sum(values(0, n))) / n
    out[lead + n - 1] = y
    for start in range(n, size, _SMOOTH_CHUNK):
        stop = min(start + _SMOOTH_CHUNK, size)
        y = _smooth_chunk(values(start, stop), alpha, y, out[lead + start : lead + stop])
    return out


def _smooth_chunk(x: FloatArray, alpha: float, y: float, out: FloatArray) -> float:
    """Continue y = αx + (1−α)y over x from the previous value y, into out; return the
    last value.

    lfilter's per-sample cost dominates a plain call, so the recursion runs only on every
    _PHASES-th value, y_t = (1−α)^P·y_(t−P) + Σ_k α(1−α)^k·x_(t−k) (k < P), and the
    values in between are filled in by P−1 whole-array steps of the plain recursion.
    """
    decay = 1.0 - alpha
    blocks = x.size // _PHASES
    head = blocks * _PHASES
    if blocks:
        xs = x[:head].reshape(blocks, _PHASES)
        ys = out[:head].reshape(blocks, _PHASES)
        step = xs[:, _PHASES - 1] * alpha
        for k in range(_PHASES - 1):
            step += xs[:, k] * (alpha * decay ** (_PHASES - 1 - k))
        gain = decay**_PHASES
        ends = lfilter([1.0], [1.0, -gain], step, zi=np.array([gain * y]))[0]
        before = np.empty(blocks)
        before[0], before[1:] = y, ends[:-1]
        for k in range(_PHASES - 1):
            before *= decay
            before += alpha * xs[:, k]
            ys[:, k] = before
        ys[:, _PHASES - 1] = ends
        y = float(ends[-1])
    if head < x.size:
        out[head:] = lfilter([alpha], [1.0, -decay], x[head:], zi=np.array([decay * y]))[0]
        y = float(out[-1])
    return y


def _slice_of(x: FloatArray) -> Values:
    return lambda start, stop: x[start:stop]


def _true_ranges(high: FloatArray, low: FloatArray, close: FloatArray) -> Values:
    """The true ranges of bars 1, 2, ... (bar 0 has none), a slice at a time."""

    def values(start: int, stop: int) -> FloatArray:
        prev = close[start:stop]
        tr = np.maximum(high[start + 1 : stop + 1], prev)
        tr -= np.minimum(low[start + 1 : stop + 1], prev)
        return tr

    return values


def _atr(high: FloatArray, low: FloatArray, close: FloatArray, n: int) -> FloatArray:
    if close.size == 0:
        return np.empty(0)
    return _smooth(_true_ranges(high, low, close), close.size - 1, n, 1.0 / n, lead=1)


# ---------------------------------------------------------------- batch indicators


def sma(x: npt.ArrayLike, n: int) -> FloatArray:
    """Simple moving average of the last `n` values; NaN before index n-1."""
    n = _period(n)
    return _rolling(partial(_sum_kernel, n), (_series(x),), n)[0]


def ema(x: npt.ArrayLike, n: int) -> FloatArray:
    """EMA(n) as TA-Lib: seeded with SMA(x[:n]) at index n-1, alpha = 2/(n+1)."""
    n = _period(n)
    arr = _series(x)
    return _smooth(_slice_of(arr), arr.size, n, 2.0 / (n + 1.0))


def highest(x: npt.ArrayLike, n: int) -> FloatArray:
    """Highest value of the last `n` (TA-Lib MAX); NaN before index n-1."""
    n = _period(n)
    return _rolling(partial(_max_kernel, n), (_series(x),), n)[0]


def lowest(x: npt.ArrayLike, n: int) -> FloatArray:
    """Lowest value of the last `n` (TA-Lib MIN); NaN before index n-1."""
    n = _period(n)
    return _rolling(partial(_min_kernel, n), (_series(x),), n)[0]


def stddev(x: npt.ArrayLike, n: int) -> FloatArray:
    """Population (ddof=0) standard deviation of the last `n` values; NaN before n-1."""
    n = _period(n)
    return _rolling(partial(_std_kernel, n), (_series(x),), n)[0]


def linreg(x: npt.ArrayLike, n: int) -> FloatArray:
    """TA-Lib LINEARREG: the value at the newest point of the least-squares line through
    the last `n` values (n = 1 gives x itself); NaN before index n-1."""
    n = _period(n)
    return _rolling(partial(_linreg_kernel, n), (_series(x),), n)[0]


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """TA-Lib TRANGE: max(high, previous close) − min(low, previous close); NaN at 0.

    With high >= low this equals max(high − low, |high − prev|, |low − prev|) exactly.
    """
    return _rolling(_true_range_kernel, _bars(high, low, close), 2)[0]


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """TA-Lib ATR: Wilder smoothing (alpha = 1/n) of the true range, seeded with the mean
    of the true ranges at 1..n; first value at index n."""
    return _atr(*_bars(high, low, close), _period(n))


@dataclass(frozen=True, slots=True)
class Bands:
    """An upper, middle and lower line, each as long as the input."""

    upper: FloatArray
    middle: FloatArray
    lower: FloatArray


def bollinger(close: npt.ArrayLike, n: int = 20, k: float = 2.0) -> Bands:
    """Bollinger bands as TA-Lib BBANDS(matype=0): SMA(n) ± k × population stdev(n)."""
    n = _period(n)
    upper, middle, lower = _rolling(
        partial(_bollinger_kernel, n, k), (_series(close, "close"),), n, (np.float64,) * 3
    )
    return Bands(upper=upper, middle=middle, lower=lower)


def keltner(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 20, k: float = 1.5
) -> Bands:
    """Keltner channel: EMA(n) of close ± k × ATR(n). Defined from index n (ATR's start)."""
    h, lo, c = _bars(high, low, close)
    n = _period(n)
    middle, width = ema(c, n), k * atr(h, lo, c, n)
    return Bands(upper=middle + width, middle=middle, lower=middle - width)


def squeeze_momentum(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 20
) -> FloatArray:
    """TTM Squeeze momentum: LINEARREG(n) of close − ((highest high n + lowest low n)/2 +
    SMA n)/2. First defined at index 2(n−1)."""
    h, lo, c = _bars(high, low, close)
    n = _period(n)
    return _rolling(partial(_momentum_kernel, n), (h, lo, c, sma(c, n)), 2 * n - 1)[0]


def squeeze_on(bb: Bands, kc: Bands) -> BoolArray:
    """True where both Bollinger bands lie strictly inside the Keltner bands; False where
    either is undefined (warm-up)."""
    return (bb.upper < kc.upper) & (bb.lower > kc.lower)


@dataclass(frozen=True, slots=True)
class Squeeze:
    """TTM Squeeze: `on` (bool, False during warm-up) and `momentum` (NaN during warm-up)."""

    on: BoolArray
    momentum: FloatArray


def ttm_squeeze(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    n: int = 20,
    *,
    bb_mult: float = 2.0,
    kc_mult: float = 1.5,
) -> Squeeze:
    """TTM Squeeze: on while Bollinger(n, bb_mult) lies inside Keltner(n, kc_mult); and its
    momentum (`squeeze_momentum`)."""
    h, lo, c = _bars(high, low, close)
    n = _period(n)
    on = squeeze_on(bollinger(c, n, bb_mult), keltner(h, lo, c, n, kc_mult))
    return Squeeze(on=on, momentum=squeeze_momentum(h, lo, c, n))


@dataclass(frozen=True, slots=True)
class IndicatorArrays:
    """The system's indicator set over a whole series (read-only arrays, input length).

    `squeeze_on` is False during warm-up (before index 20); the others are NaN.
    """

    ema8: FloatArray
    ema13: FloatArray
    ema21: FloatArray
    ema48: FloatArray
    ema200: FloatArray
    atr14: FloatArray
    bb_upper: FloatArray
    bb_middle: FloatArray
    bb_lower: FloatArray
    kc_upper: FloatArray
    kc_middle: FloatArray
    kc_lower: FloatArray
    squeeze_on: BoolArray
    momentum: FloatArray

    def __post_init__(self) -> None:
        for field in fields(self):
            getattr(self, field.name).setflags(write=False)


def compute_indicators(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> IndicatorArrays:
    """EMA 8/13/21/48/200, ATR 14, Bollinger 20/2, Keltner 20/1.5, TTM squeeze on/off and
    momentum over whole arrays. The true range serves both ATRs, and Bollinger's middle
    line is the momentum's SMA 20."""
    h, lo, c = _bars(high, low, close)
    n = SQUEEZE_PERIOD
    kc_middle = ema(c, n)
    kc_lower = _atr(h, lo, c, n)  # ATR 20 until the squeeze kernel turns it into the band
    bb_upper, bb_middle, bb_lower, kc_upper, on = _rolling(
        partial(_squeeze_kernel, n),
        (c, kc_middle, kc_lower),
        n,
        (np.float64,) * 4 + (np.bool_,),
    )
    ema8, ema13, ema21, ema48, ema200 = (ema(c, p) for p in EMA_PERIODS)
    return IndicatorArrays(
        ema8=ema8,
        ema13=ema13,
        ema21=ema21,
        ema48=ema48,
        ema200=ema200,
        atr14=_atr(h, lo, c, ATR_PERIOD),
        bb_upper=bb_upper,
        bb_middle=bb_middle,
        bb_lower=bb_lower,
        kc_upper=kc_upper,
        kc_middle=kc_middle,
        kc_lower=kc_lower,
        squeeze_on=on,
        momentum=_rolling(partial(_momentum_kernel, n), (h, lo, c, bb_middle), 2 * n - 1)[0],
    )


# ---------------------------------------------------------------- incremental forms


class EmaState:
    """Seeded exponential smoothing one value at a time; `EmaState(n)` equals `ema(x, n)`.

    `alpha` defaults to 2/(n+1); Wilder smoothing uses 1/n.
    """

    def __init__(self, n: int, alpha: float | None = None) -> None:
        self.n = _period(n)
        self._alpha = 2.0 / (self.n + 1.0) if alpha is None else float(alpha)
        if not 0.0 < self._alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self._decay = 1.0 - self._alpha
        self._count = 0
        self._seed_sum = 0.0
        self.value = math.nan

    def update(self, x: float) -> float:
        """Feed one value; return the current EMA (NaN during the first n−1 values)."""
        if self._count >= self.n:
            self.value = self._alpha * x + self._decay * self.value
            return self.value
        self._count += 1
        self._seed_sum += x
        if self._count == self.n:
            self.value = self._seed_sum / self.n
        return self.value


class AtrState:
    """ATR(n) one bar at a time; equals `atr(high, low, close, n)`."""

    def __init__(self, n: int = 14) -> None:
        self.n = _period(n)
        self._smoother = EmaState(self.n, alpha=1.0 / self.n)
        self._prev_close = math.nan
        self.value = math.nan

    def update(self, high: float, low: float, close: float) -> float:
        """Feed one bar; return the current ATR (NaN for the first n bars)."""
        prev, self._prev_close = self._prev_close, close
        if math.isnan(prev):
            return self.value
        self.value = self._smoother.update(max(high, prev) - min(low, prev))
        return self.value


class RollingWindow:
    """The last `n` values, with the window statistics the batch functions compute.

    Every statistic is NaN until the window is full (or if it holds a NaN).
    """

    def __init__(self, n: int) -> None:
        self.n = _period(n)
        self._values: deque[float] = deque(maxlen=self.n)
        self._alpha, self._beta = _linreg_coefficients(self.n)

    def push(self, x: float) -> None:
        self._values.append(x)

    @property
    def full(self) -> bool:
        return len(self._values) == self.n

    def mean(self) -> float:
        return sum(self._values) / self.n if self.full else math.nan

    def pstdev(self) -> float:
        """Population standard deviation (ddof=0)."""
        mean = self.mean()
        return math.sqrt(sum((v - mean) ** 2 for v in self._values) / self.n)

    def linreg(self) -> float:
        """Endpoint of the least-squares line through the window."""
        if not self.full:
            return math.nan
        ramp = sum(k * v for k, v in enumerate(self._values))
        return self._alpha * sum(self._values) + self._beta * ramp

    def highest(self) -> float:
        return max(self._values) if self.full and self._finite() else math.nan

    def lowest(self) -> float:
        return min(self._values) if self.full and self._finite() else math.nan

    def _finite(self) -> bool:
        return not any(math.isnan(v) for v in self._values)


@dataclass(frozen=True, slots=True)
class IndicatorSnapshot:
    """The indicator set after one bar; NaN (or False for `squeeze_on`) during warm-up."""

    ema8: float
    ema13: float
    ema21: float
    ema48: float
    ema200: float
    atr14: float
    bb_upper: float
    bb_middle: float
    bb_lower: float
    kc_upper: float
    kc_middle: float
    kc_lower: float
    squeeze_on: bool
    momentum: float


class IndicatorSet:
    """The same set as `compute_indicators`, updated one bar at a time for live use."""

    def __init__(self) -> None:
        self._emas = [EmaState(p) for p in EMA_PERIODS]
        self._atr = AtrState(ATR_PERIOD)
        self._kc_mid = EmaState(SQUEEZE_PERIOD)
        self._kc_atr = AtrState(SQUEEZE_PERIOD)
        self._closes = RollingWindow(SQUEEZE_PERIOD)
        self._highs = RollingWindow(SQUEEZE_PERIOD)
        self._lows = RollingWindow(SQUEEZE_PERIOD)
        self._deltas = RollingWindow(SQUEEZE_PERIOD)

    def update(self, high: float, low: float, close: float) -> IndicatorSnapshot:
        """Feed one bar (in time order); return every indicator as of that bar."""
        ema8, ema13, ema21, ema48, ema200 = (state.update(close) for state in self._emas)
        self._closes.push(close)
        self._highs.push(high)
        self._lows.push(low)
        mean, width = self._closes.mean(), BB_MULT * self._closes.pstdev()
        kc_mid = self._kc_mid.update(close)
        kc_width = KC_MULT * self._kc_atr.update(high, low, close)
        bb_upper, bb_lower = mean + width, mean - width
        kc_upper, kc_lower = kc_mid + kc_width, kc_mid - kc_width
        donchian_mid = (self._highs.highest() + self._lows.lowest()) / 2.0
        self._deltas.push(close - (donchian_mid + mean) / 2.0)
        return IndicatorSnapshot(
            ema8=ema8,
            ema13=ema13,
            ema21=ema21,
            ema48=ema48,
            ema200=ema200,
            atr14=self._atr.update(high, low, close),
            bb_upper=bb_upper,
            bb_middle=mean,
            bb_lower=bb_lower,
            kc_upper=kc_upper,
            kc_middle=kc_mid,
            kc_lower=kc_lower,
            squeeze_on=bb_upper < kc_upper and bb_lower > kc_lower,
            momentum=self._deltas.linreg(),
        )
