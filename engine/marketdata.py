"""Market-data messages and the market-data port.

Every adapter (replay of bundled bars, Alpaca, TwelveData) implements `MarketDataPort`.
All times are timezone-aware UTC. A bar is stamped at its open (`ts`) and becomes
visible at `ts + interval` (its close); a daily bar after that session's close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Timeframe(StrEnum):
    MINUTE = "1m"
    DAY = "1d"


class Right(StrEnum):
    CALL = "call"
    PUT = "put"


@dataclass(frozen=True, slots=True)
class Quote:
    """An underlying's latest quote as of `ts`."""

    symbol: str
    ts: datetime
    last: float
    bid: float
    ask: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar, stamped at its open."""

    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass(frozen=True, slots=True)
class OptionContract:
    underlying: str
    expiry: date
    strike: float
    right: Right

    @property
    def occ_symbol(self) -> str:
        """OCC/OSI symbol, e.g. `SPY   131018C00168000`."""
        strike_milli = round(self.strike * 1000)
        return (
            f"{self.underlying:<6}{self.expiry:%y%m%d}"
            f"{'C' if self.right is Right.CALL else 'P'}{strike_milli:08d}"
        )


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """A quote for one contract. `source` says whether it was recorded or modelled."""

    contract: OptionContract
    ts: datetime
    bid: float
    ask: float
    implied_vol: float | None
    underlying_price: float
    source: str  # "recorded" | "model" | vendor name

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


@runtime_checkable
class MarketDataPort(Protocol):
    """What the engine needs to know about the market. Implemented by adapters.

    Methods raise `engine.errors.Retryable` for transient vendor failures and
    `engine.errors.Rejected` (e.g. code `unknown_symbol`, `unavailable`) otherwise.
    `as_of` is the caller's clock time: nothing after it may be returned.
    """

    name: str

    async def quote(self, symbol: str, as_of: datetime) -> Quote: ...

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]: ...

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]: ...

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote: ...
