"""Protections with Freqtrade's names, parameters and semantics, over closed trades.

Mirrored from Freqtrade's `freqtrade/plugins/protections/` (IProtection and the four
handlers below) and `Trade.get_trades_proxy`:

- Periods are minutes (`lookback_period`, `stop_duration`). Freqtrade's `*_candles`
  variants are candles × timeframe minutes: convert with `candles_to_minutes`.
- The lookback window is open at its start and closed at now: a trade counts when
  now − lookback_period < closed_at <= now (Freqtrade filters `close_date > now −
  lookback`; a trade closed after now cannot exist there, here it is ignored).
- A lock lasts until the latest close among the trades that triggered it +
  stop_duration (`IProtection.calculate_lock_end`), and is active while now < until
  (`PairLock.lock_end_time > now`).
- A lock with `symbol=None` is global (Freqtrade's pair `"*"`) and blocks every symbol.

Not mirrored: `unlock_at`, `only_per_side` (Tandem's risk checks are per symbol), and
MaxDrawdown's `calculation_mode="equity"` (the default "ratios" mode is used).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from engine.clock import ensure_utc
from engine.errors import Fatal
from engine.positions import ClosedTrade

if TYPE_CHECKING:
    from engine.settings import Settings

# Freqtrade's ExitType values that StoplossGuard counts.
STOPLOSS_EXIT_REASONS = frozenset(
    {"stop_loss", "trailing_stop_loss", "stoploss_on_exchange", "liquidation"}
)


@dataclass(frozen=True, slots=True)
class Lock:
    """No entries on `symbol` (every symbol if None) while now < `until`."""

    protection: str
    symbol: str | None
    until: datetime
    reason: str
    locked_at: datetime

    def applies_to(self, symbol: str) -> bool:
        return self.symbol is None or self.symbol.upper() == symbol.upper()

    def active(self, now: datetime) -> bool:
        return ensure_utc(now) < self.until


class Protection(Protocol):
    """A protection: `global_lock` for all symbols, `pair_lock` for one (None if n/a)."""

    @property
    def name(self) -> str: ...

    def global_lock(self, trades: Sequence[ClosedTrade], now: datetime) -> Lock | None: ...

    def pair_lock(
        self, trades: Sequence[ClosedTrade], now: datetime, symbol: str
    ) -> Lock | None: ...


def candles_to_minutes(candles: int, timeframe_minutes: int) -> int:
    """Freqtrade's `lookback_period_candles` / `stop_duration_candles` in minutes."""
    return candles * timeframe_minutes


def _window(
    trades: Sequence[ClosedTrade], now: datetime, minutes: int, symbol: str | None = None
) -> list[ClosedTrade]:
    start = now - timedelta(minutes=minutes)
    sym = symbol.upper() if symbol is not None else None
    return [
        t for t in trades if start < t.closed_at <= now and (sym is None or t.symbol.upper() == sym)
    ]


def _lock(  # noqa: PLR0917
    name: str,
    trades: Sequence[ClosedTrade],
    stop_duration: int,
    symbol: str | None,
    reason: str,
    now: datetime,
) -> Lock:
    until = max(t.closed_at for t in trades) + timedelta(minutes=stop_duration)
    return Lock(name, symbol.upper() if symbol is not None else None, until, reason, now)


def _check_params(name: str, lookback_period: int, trade_limit: int, stop_duration: int) -> None:
    if lookback_period < 0 or stop_duration < 0:
        raise Fatal(f"{name}: lookback_period and stop_duration must be >= 0 minutes")
    if trade_limit < 1:
        raise Fatal(f"{name}: trade_limit must be >= 1, got {trade_limit!r}")


@dataclass(frozen=True, slots=True)
class StoplossGuard:
    """Lock after `trade_limit` stop-loss exits with profit < `required_profit` in the window.

    Global unless `only_per_pair`; per symbol always (Freqtrade's has_global_stop and
    has_local_stop). Like Freqtrade, a trade with a profit of exactly 0 is not counted.
    """

    lookback_period: int = 60
    trade_limit: int = 10
    stop_duration: int = 60
    only_per_pair: bool = False
    required_profit: float = 0.0
    name: str = "StoplossGuard"

    def __post_init__(self) -> None:
        _check_params(self.name, self.lookback_period, self.trade_limit, self.stop_duration)

    def _guard(
        self, trades: Sequence[ClosedTrade], now: datetime, symbol: str | None
    ) -> Lock | None:
        utc = ensure_utc(now)
        stops = [
            t
            for t in _window(trades, utc, self.lookback_period, symbol)
            if t.exit_reason in STOPLOSS_EXIT_REASONS
            and t.profit_ratio != 0
            and t.profit_ratio < self.required_profit
        ]
        if len(stops) < self.trade_limit:
            return None
        reason = f"{self.trade_limit} stoplosses in {self.lookback_period} min"
        return _lock(self.name, stops, self.stop_duration, symbol, reason, utc)

    def global_lock(self, trades: Sequence[ClosedTrade], now: datetime) -> Lock | None:
        return None if self.only_per_pair else self._guard(trades, now, None)

    def pair_lock(self, trades: Sequence[ClosedTrade], now: datetime, symbol: str) -> Lock | None:
        return self._guard(trades, now, symbol)


@dataclass(frozen=True, slots=True)
class MaxDrawdown:
    """Global lock when the drawdown of cumulative profit ratios in the window > the limit.

    Freqtrade's "ratios" mode: trades sorted by close, cumulative sum of profit ratios,
    drawdown = max over trades of (running peak − cumulative), the peak starting at the
    first trade's cumulative value (not 0: one losing trade alone is no drawdown).
    """

    lookback_period: int = 60
    trade_limit: int = 1
    stop_duration: int = 60
    max_allowed_drawdown: float = 0.0
    name: str = "MaxDrawdown"

    def __post_init__(self) -> None:
        _check_params(self.name, self.lookback_period, self.trade_limit, self.stop_duration)

    def global_lock(self, trades: Sequence[ClosedTrade], now: datetime) -> Lock | None:
        utc = ensure_utc(now)
        window = _window(trades, utc, self.lookback_period)
        if len(window) < self.trade_limit:
            return None
        drawdown = ratio_drawdown([t.profit_ratio for t in sorted(window, key=_close_time)])
        if not drawdown > self.max_allowed_drawdown:
            return None
        reason = (
            f"drawdown {drawdown:.4f} > {self.max_allowed_drawdown} in {self.lookback_period} min"
        )
        return _lock(self.name, window, self.stop_duration, None, reason, utc)

    def pair_lock(self, trades: Sequence[ClosedTrade], now: datetime, symbol: str) -> Lock | None:
        return None


def ratio_drawdown(ratios: Sequence[float]) -> float:
    """Freqtrade's `calculate_max_drawdown(..., value_col="close_profit").drawdown_abs`."""
    cumulative = peak = drawdown = 0.0
    for i, ratio in enumerate(ratios):
        cumulative += ratio
        peak = cumulative if i == 0 else max(peak, cumulative)
        drawdown = max(drawdown, peak - cumulative)
    return drawdown


def _close_time(trade: ClosedTrade) -> datetime:
    return trade.closed_at


@dataclass(frozen=True, slots=True)
class CooldownPeriod:
    """Lock a symbol for `stop_duration` after each of its trades closes (per symbol only)."""

    stop_duration: int = 60
    name: str = "CooldownPeriod"

    def __post_init__(self) -> None:
        _check_params(self.name, 0, 1, self.stop_duration)

    def global_lock(self, trades: Sequence[ClosedTrade], now: datetime) -> Lock | None:
        return None

    def pair_lock(self, trades: Sequence[ClosedTrade], now: datetime, symbol: str) -> Lock | None:
        utc = ensure_utc(now)
        recent = _window(trades, utc, self.stop_duration, symbol)
        if not recent:
            return None
        latest = max(recent, key=_close_time)
        reason = f"cooldown for {self.stop_duration} min"
        return _lock(self.name, [latest], self.stop_duration, symbol, reason, utc)


@dataclass(frozen=True, slots=True)
class LowProfitPairs:
    """Lock a symbol whose summed profit ratio over >= `trade_limit` trades < required."""

    lookback_period: int = 60
    trade_limit: int = 1
    stop_duration: int = 60
    required_profit: float = 0.0
    name: str = "LowProfitPairs"

    def __post_init__(self) -> None:
        _check_params(self.name, self.lookback_period, self.trade_limit, self.stop_duration)

    def global_lock(self, trades: Sequence[ClosedTrade], now: datetime) -> Lock | None:
        return None

    def pair_lock(self, trades: Sequence[ClosedTrade], now: datetime, symbol: str) -> Lock | None:
        utc = ensure_utc(now)
        window = _window(trades, utc, self.lookback_period, symbol)
        if len(window) < self.trade_limit:
            return None
        profit = sum(t.profit_ratio for t in window)
        if not profit < self.required_profit:
            return None
        reason = f"profit {profit:.4f} < {self.required_profit} in {self.lookback_period} min"
        return _lock(self.name, window, self.stop_duration, symbol, reason, utc)


@dataclass(frozen=True, slots=True)
class ProtectionConfig:
    """Which protections run, each with its parameters; None turns one off.

    The defaults suit one-trade-per-signal option trading: a 5-minute cooldown per
    symbol, a 4-hour global stop after 3 stop-losses in a day, a 12-hour global stop
    when the ratios drawdown over two days passes 1.0 (one premium lost net), and a
    1-hour stop for a symbol whose last 2+ trades of the day lost in sum. The settings
    (`from_settings`) default to the same parameters, with CooldownPeriod off: it would
    refuse a TradingView strategy's own re-entry or reversal right after an exit.
    """

    cooldown: CooldownPeriod | None = CooldownPeriod(stop_duration=5)
    stoploss_guard: StoplossGuard | None = StoplossGuard(
        lookback_period=1440, trade_limit=3, stop_duration=240
    )
    max_drawdown: MaxDrawdown | None = MaxDrawdown(
        lookback_period=2880, trade_limit=3, stop_duration=720, max_allowed_drawdown=1.0
    )
    low_profit_pairs: LowProfitPairs | None = LowProfitPairs(
        lookback_period=1440, trade_limit=2, stop_duration=60, required_profit=0.0
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ProtectionConfig:
        """The protections `TANDEM_PROTECTIONS` enables, with their `TANDEM_<METHOD>_*`."""
        s, on = settings, settings.protection_names
        return cls(
            cooldown=_enabled(CooldownPeriod(stop_duration=s.cooldownperiod_stop_duration), on),
            stoploss_guard=_enabled(
                StoplossGuard(
                    lookback_period=s.stoplossguard_lookback_period,
                    trade_limit=s.stoplossguard_trade_limit,
                    stop_duration=s.stoplossguard_stop_duration,
                    only_per_pair=s.stoplossguard_only_per_pair,
                    required_profit=s.stoplossguard_required_profit,
                ),
                on,
            ),
            max_drawdown=_enabled(
                MaxDrawdown(
                    lookback_period=s.maxdrawdown_lookback_period,
                    trade_limit=s.maxdrawdown_trade_limit,
                    stop_duration=s.maxdrawdown_stop_duration,
                    max_allowed_drawdown=s.maxdrawdown_max_allowed_drawdown,
                ),
                on,
            ),
            low_profit_pairs=_enabled(
                LowProfitPairs(
                    lookback_period=s.lowprofitpairs_lookback_period,
                    trade_limit=s.lowprofitpairs_trade_limit,
                    stop_duration=s.lowprofitpairs_stop_duration,
                    required_profit=s.lowprofitpairs_required_profit,
                ),
                on,
            ),
        )


_P = TypeVar("_P", CooldownPeriod, StoplossGuard, MaxDrawdown, LowProfitPairs)


def _enabled(protection: _P, names: Collection[str]) -> _P | None:
    return protection if protection.name in names else None


def create_default_protections(
    config: ProtectionConfig | Settings | None = None,
) -> tuple[Protection, ...]:
    """The enabled protections of `config` (a `ProtectionConfig`, the run's `Settings`, or
    None for `ProtectionConfig()`'s defaults), in evaluation order."""
    if config is None:
        cfg = ProtectionConfig()
    elif isinstance(config, ProtectionConfig):
        cfg = config
    else:
        cfg = ProtectionConfig.from_settings(config)
    chosen = (cfg.cooldown, cfg.stoploss_guard, cfg.max_drawdown, cfg.low_profit_pairs)
    return tuple(p for p in chosen if p is not None)


def history_minutes(protections: Sequence[Protection]) -> int:
    """How far back (minutes before now) closed trades can matter to any of `protections`:
    the longest lookback_period, or stop_duration for CooldownPeriod, which has none."""
    spans = [
        int(getattr(p, "lookback_period", getattr(p, "stop_duration", 0))) for p in protections
    ]
    return max(spans, default=0)
