"""MarketDataActor: the `MarketDataService` (cache, breakers, fallback) behind one actor.

A plain class; `actors/system.py` wraps it with `ray.remote`. It is built from a provider
spec, never from the environment:

- `ReplayProviders` (the embedded default): the bundled data of one scenario, no keys;
- `VendorProviders` (with keys): Alpaca primary, TwelveData fallback when its key is given.

Given a `ThrottlerActor` handle, every provider call is charged to the shared throttler
through `RemoteThrottler`; vendor providers without one get a throttler of their own, so
the free plans' limits hold either way. The methods mirror `MarketDataPort`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from actors.event_sink import EventSink
from actors.metrics import MarketDataMetrics
from actors.throttler import VENDOR_LIMITS, RemoteThrottler
from engine.adapters.alpaca_data import ALPACA_DATA_URL, ALPACA_LIMIT_ID, AlpacaMarketData
from engine.adapters.replay import ReplayMarketData
from engine.adapters.twelvedata import TWELVEDATA_LIMIT_ID, TWELVEDATA_URL, TwelveDataMarketData
from engine.breaker import BreakerState
from engine.clock import Clock, LiveClock
from engine.events import Event
from engine.market_service import MarketDataService, ProviderLimit, RateGate
from engine.marketdata import Bar, MarketDataPort, OptionContract, OptionQuote, Quote, Timeframe
from engine.scenarios import DEFAULT_SCENARIO
from engine.throttle import Throttler

log = logging.getLogger(__name__)

# HTTP requests one port call makes at least: Alpaca's quote, option quote and chain also
# fetch the underlying's latest trade. Pages beyond the first are not charged up front.
ALPACA_COSTS = ProviderLimit(ALPACA_LIMIT_ID, {"quote": 2, "option_quote": 2, "option_chain": 2})
TWELVEDATA_COSTS = ProviderLimit(TWELVEDATA_LIMIT_ID)


@dataclass(frozen=True, slots=True)
class ReplayProviders:
    """Replay one bundled scenario. `limit_id`: charge each call to that throttler limit."""

    scenario: str = DEFAULT_SCENARIO
    limit_id: str | None = None


@dataclass(frozen=True, slots=True)
class VendorProviders:
    """Alpaca (primary) and, when `twelvedata_api_key` is set, TwelveData (fallback)."""

    alpaca_key_id: str = field(repr=False)
    alpaca_secret_key: str = field(repr=False)
    twelvedata_api_key: str | None = field(default=None, repr=False)
    alpaca_url: str = ALPACA_DATA_URL
    twelvedata_url: str = TWELVEDATA_URL
    alpaca_feed: str = "iex"
    timeout_s: float = 10.0
    attempts: int = 3


ProviderSpec = ReplayProviders | VendorProviders


@dataclass(frozen=True)
class Providers:
    """What a spec builds: the ports and the limits their calls are charged to."""

    primary: MarketDataPort
    fallback: MarketDataPort | None = None
    primary_limit: ProviderLimit | None = None
    fallback_limit: ProviderLimit | None = None


def build_providers(spec: ProviderSpec, clock: Clock) -> Providers:
    """The providers a spec names (vendor adapters open no connection until used)."""
    if isinstance(spec, ReplayProviders):
        limit = ProviderLimit(spec.limit_id) if spec.limit_id is not None else None
        return Providers(ReplayMarketData(spec.scenario), primary_limit=limit)
    alpaca = AlpacaMarketData(
        key_id=spec.alpaca_key_id,
        secret_key=spec.alpaca_secret_key,
        clock=clock,
        base_url=spec.alpaca_url,
        timeout_s=spec.timeout_s,
        attempts=spec.attempts,
        feed=spec.alpaca_feed,
    )
    if spec.twelvedata_api_key is None:
        return Providers(alpaca, primary_limit=ALPACA_COSTS)
    twelvedata = TwelveDataMarketData(
        api_key=spec.twelvedata_api_key,
        clock=clock,
        base_url=spec.twelvedata_url,
        timeout_s=spec.timeout_s,
        attempts=spec.attempts,
    )
    return Providers(alpaca, twelvedata, ALPACA_COSTS, TWELVEDATA_COSTS)


class _Report:
    """The service's observer: metrics for everything, a log line per breaker change."""

    def __init__(self, metrics: MarketDataMetrics, sink: EventSink) -> None:
        self.metrics = metrics
        self.sink = sink

    def on_lookup(self, method: str, hit: bool) -> None:
        self.metrics.on_lookup(method, hit)

    def on_call(self, provider: str, method: str, outcome: str) -> None:
        self.metrics.on_call(provider, method, outcome)

    def on_fallback(self, provider: str, method: str) -> None:
        self.metrics.on_fallback(provider, method)

    def on_state(self, provider: str, old: BreakerState, new: BreakerState, at: datetime) -> None:
        self.metrics.on_transition(provider, old.value, new.value, new.level)
        payload = {"provider": provider, "from": old.value, "to": new.value}
        self.sink.record(Event("circuit_breaker_changed", "marketdata", at, payload, provider))


class MarketDataActor:
    def __init__(
        self,
        spec: ProviderSpec | None = None,
        throttler: Any = None,
        *,
        clock: Clock | None = None,
        cache_ttl_s: float = 60.0,
        store: Any = None,
    ) -> None:
        self._clock = clock if clock is not None else LiveClock()
        self._providers = build_providers(spec or ReplayProviders(), self._clock)
        gate: RateGate | None = RemoteThrottler(throttler) if throttler is not None else None
        if gate is None and isinstance(spec, VendorProviders):
            gate = Throttler(VENDOR_LIMITS, self._clock)
        self._metrics = MarketDataMetrics()
        p = self._providers
        self._service = MarketDataService(
            p.primary,
            p.fallback,
            clock=self._clock,
            cache_ttl_s=cache_ttl_s,
            throttler=gate,
            primary_limit=p.primary_limit,
            fallback_limit=p.fallback_limit,
            observer=_Report(self._metrics, EventSink(store)),
        )
        for name, state in self._service.stats().breakers.items():
            self._metrics.on_breaker(name, state.level)

    async def quote(self, symbol: str, as_of: datetime) -> Quote:
        return await self._service.quote(symbol, as_of)

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        return await self._service.bars(symbol, timeframe, start, end, as_of)

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]:
        return await self._service.option_chain(underlying, expiry, as_of)

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        return await self._service.option_quote(contract, as_of)

    async def stats(self) -> dict[str, Any]:
        """Hit rate, calls and failures per provider, fallbacks, breaker states."""
        s = self._service.stats()
        return {
            "requests": s.requests,
            "cache_hits": s.cache_hits,
            "cache_misses": s.cache_misses,
            "hit_rate": s.hit_rate,
            "coalesced": s.coalesced,
            "fallbacks": s.fallbacks,
            "calls": s.calls,
            "failures": s.failures,
            "breakers": {name: state.value for name, state in s.breakers.items()},
        }

    async def aclose(self) -> None:
        """Close the vendors' HTTP connections."""
        for port in (self._providers.primary, self._providers.fallback):
            if isinstance(port, AlpacaMarketData | TwelveDataMarketData):
                await port.aclose()


class RemoteMarket:
    """The MarketData actor's handle with the port's awaitable methods."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        quote: OptionQuote = await self._handle.option_quote.remote(contract, as_of)
        return quote

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]:
        chain: list[OptionQuote] = await self._handle.option_chain.remote(underlying, expiry, as_of)
        return chain

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        bars: list[Bar] = await self._handle.bars.remote(symbol, timeframe, start, end, as_of)
        return bars
