"""`MarketDataService`: one `MarketDataPort` in front of a primary and a fallback provider.

A request goes, in order, to:

1. the cache (`engine.cache`: as-of-minute keys, 60 s TTL by the clock);
2. an identical request already in flight (same key, its `as_of` not after ours), which it
   joins instead of asking the provider again;
3. the primary, through its circuit breaker (`engine.breaker`), after
   `await gate.acquire(limit_id, weight)` when a rate gate and a limit are configured;
4. the fallback, through its own breaker and limit, when the primary raised `Retryable`,
   its breaker is open, or it raised a *vendor-side* `Rejected` (a code in `FALLBACK_CODES`).

When no provider answers: `ProvidersDown` (a `Retryable`, naming every provider's failure)
if any of them failed transiently, since retrying may then succeed; otherwise the
primary's own `Rejected`.

Which `Rejected` falls back: the codes that say "this vendor cannot serve this now"
(`unavailable`, `vendor_unauthorized`, `vendor_quota_exhausted`, `vendor_bad_answer`, and
`rate_limited` from our own throttler's full queue). Every other code is about the request
itself (`unknown_symbol`, `unknown_contract`, `expired`, `vendor_rejected` for a malformed
request): it propagates from the primary at once and the fallback is not asked, so a
fallback with a smaller universe can never mask it. The primary is authoritative: a
fallback's failure never replaces the primary's `Rejected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from engine.breaker import (
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_RESET_AFTER_S,
    BreakerObserver,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
)
from engine.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_S, CacheKey, TtlCache, cache_key
from engine.clock import Clock, ensure_utc
from engine.errors import Rejected, Retryable, TandemError
from engine.marketdata import Bar, MarketDataPort, OptionContract, OptionQuote, Quote, Timeframe

V = TypeVar("V")
Fetch = Callable[[MarketDataPort], Awaitable[V]]

FALLBACK_CODES = frozenset(
    {
        "unavailable",
        "vendor_unauthorized",
        "vendor_quota_exhausted",
        "vendor_bad_answer",
        "rate_limited",
    }
)


class RateGate(Protocol):
    """What the service needs of a throttler (`engine.throttle.Throttler` fits)."""

    async def acquire(self, limit_id: str, weight: int = 1) -> None: ...

    def pause(self, limit_id: str, until: datetime) -> None: ...


@dataclass(frozen=True)
class ProviderLimit:
    """The rate limit a provider's calls are charged to, and each method's weight (default 1)."""

    limit_id: str
    weights: Mapping[str, int] = field(default_factory=dict)

    def weight(self, method: str) -> int:
        return self.weights.get(method, 1)


class ServiceObserver(BreakerObserver, Protocol):
    """Told every lookup, provider call and fallback (metrics). Must not block."""

    def on_lookup(self, method: str, hit: bool) -> None: ...

    def on_call(self, provider: str, method: str, outcome: str) -> None:
        """`outcome` is "ok", "retryable" or "rejected"."""
        ...

    def on_fallback(self, provider: str, method: str) -> None: ...


class ProvidersDown(Retryable):
    """No provider answered and at least one failed transiently: retry later.

    `failures` maps each provider asked to the error it gave.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, failures: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, retry_after)
        self.failures = dict(failures or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.retry_after, self.failures))


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """Counters since the service was built. `calls` counts requests that reached a provider."""

    cache_hits: int
    cache_misses: int
    coalesced: int
    fallbacks: int
    calls: dict[str, int]
    failures: dict[str, int]
    breakers: dict[str, BreakerState]

    @property
    def requests(self) -> int:
        return self.cache_hits + self.cache_misses

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0

    @property
    def provider_calls(self) -> int:
        return sum(self.calls.values())


@dataclass(eq=False)
class _Provider:
    name: str  # the port's name; a fallback named like the primary gets "-fallback"
    port: MarketDataPort
    breaker: CircuitBreaker
    limit: ProviderLimit | None
    calls: int = 0
    failures: int = 0


@dataclass(frozen=True, eq=False)
class _Flight:
    as_of: datetime
    task: asyncio.Task[object]


class MarketDataService:
    """`MarketDataPort` over a primary and an optional fallback (see the module docstring)."""

    name = "market_data"

    def __init__(
        self,
        primary: MarketDataPort,
        fallback: MarketDataPort | None = None,
        *,
        clock: Clock,
        cache_ttl_s: float = DEFAULT_TTL_S,
        cache_max_entries: int = DEFAULT_MAX_ENTRIES,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        reset_after_s: float = DEFAULT_RESET_AFTER_S,
        throttler: RateGate | None = None,
        primary_limit: ProviderLimit | None = None,
        fallback_limit: ProviderLimit | None = None,
        fallback_codes: frozenset[str] = FALLBACK_CODES,
        observer: ServiceObserver | None = None,
    ) -> None:
        if throttler is None and (primary_limit or fallback_limit):
            raise ValueError("a provider limit needs a throttler to charge it")
        self._clock = clock
        self._gate = throttler
        self._fallback_codes = fallback_codes
        self._observer = observer
        self._failure_threshold = failure_threshold
        self._reset_after_s = reset_after_s
        self._cache: TtlCache[object] = TtlCache(cache_ttl_s, cache_max_entries)
        self._inflight: dict[CacheKey, _Flight] = {}
        self._coalesced = 0
        self._fallbacks = 0
        self._providers = [self._provider(primary.name, primary, primary_limit)]
        if fallback is not None:
            name = fallback.name if fallback.name != primary.name else f"{fallback.name}-fallback"
            self._providers.append(self._provider(name, fallback, fallback_limit))

    def _provider(self, name: str, port: MarketDataPort, limit: ProviderLimit | None) -> _Provider:
        breaker = CircuitBreaker(
            name,
            self._clock,
            failure_threshold=self._failure_threshold,
            reset_after_s=self._reset_after_s,
            observer=self._observer,
        )
        return _Provider(name, port, breaker, limit)

    # --- MarketDataPort -------------------------------------------------------------

    async def quote(self, symbol: str, as_of: datetime) -> Quote:
        return await self._answer("quote", (symbol,), as_of, lambda p: p.quote(symbol, as_of))

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        args = (symbol, Timeframe(timeframe), ensure_utc(start), ensure_utc(end))
        return await self._answer(
            "bars", args, as_of, lambda p: p.bars(symbol, timeframe, start, end, as_of)
        )

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]:
        return await self._answer(
            "option_chain",
            (underlying, expiry),
            as_of,
            lambda p: p.option_chain(underlying, expiry, as_of),
        )

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        return await self._answer(
            "option_quote", (contract,), as_of, lambda p: p.option_quote(contract, as_of)
        )

    # --- figures ----------------------------------------------------------------------

    def stats(self) -> ServiceStats:
        return ServiceStats(
            cache_hits=self._cache.hits,
            cache_misses=self._cache.misses,
            coalesced=self._coalesced,
            fallbacks=self._fallbacks,
            calls={p.name: p.calls for p in self._providers},
            failures={p.name: p.failures for p in self._providers},
            breakers={p.name: p.breaker.state for p in self._providers},
        )

    # --- internals --------------------------------------------------------------------

    async def _answer(
        self, method: str, args: tuple[Hashable, ...], as_of: datetime, fetch: Fetch[V]
    ) -> V:
        as_of = ensure_utc(as_of)
        key = cache_key(method, args, as_of)
        cached = self._cache.get(key, as_of, self._clock.now())
        if self._observer is not None:
            self._observer.on_lookup(method, cached is not None)
        if cached is not None:
            return _fresh(cast(V, cached))
        flight = self._inflight.get(key)
        if flight is None or flight.as_of > as_of:
            flight = self._take_off(key, as_of, fetch)
        else:
            self._coalesced += 1
        # shield: a caller that gives up does not cancel the others' answer
        return _fresh(cast(V, await asyncio.shield(flight.task)))

    def _take_off(self, key: CacheKey, as_of: datetime, fetch: Fetch[V]) -> _Flight:
        task = asyncio.ensure_future(self._fetch_and_store(key, as_of, fetch))
        flight = _Flight(as_of, task)
        self._inflight[key] = flight

        def landed(done: asyncio.Task[object]) -> None:
            if self._inflight.get(key) is flight:
                del self._inflight[key]
            if not done.cancelled():
                done.exception()  # retrieved, so an error nobody awaited is not logged

        task.add_done_callback(landed)
        return flight

    async def _fetch_and_store(self, key: CacheKey, as_of: datetime, fetch: Fetch[V]) -> object:
        value = await self._from_providers(key, fetch)
        self._cache.put(key, value, as_of, self._clock.now())
        return value

    async def _from_providers(self, key: CacheKey, fetch: Fetch[V]) -> V:
        failures: list[tuple[str, TandemError]] = []
        for provider in self._providers:
            try:
                value = await self._call(provider, key.method, fetch)
            except Retryable as exc:
                failures.append((provider.name, exc))
                continue
            except Rejected as exc:
                if not failures and exc.code not in self._fallback_codes:
                    raise  # about the request itself: the primary's word stands
                failures.append((provider.name, exc))
                continue
            if failures:
                self._fallbacks += 1
                if self._observer is not None:
                    self._observer.on_fallback(provider.name, key.method)
            return value
        raise _no_answer(key, failures)

    async def _call(self, provider: _Provider, method: str, fetch: Fetch[V]) -> V:
        provider.breaker.check()  # an open breaker costs no rate-limit weight
        if self._gate is not None and provider.limit is not None:
            await self._gate.acquire(provider.limit.limit_id, provider.limit.weight(method))

        async def attempt() -> V:
            provider.calls += 1
            return await fetch(provider.port)

        try:
            value = await provider.breaker.call(attempt)
        except CircuitOpen:
            raise  # the probe was taken while we waited for the gate: not a call
        except (Retryable, Rejected) as exc:
            self._failed(provider, method, exc)
            raise
        if self._observer is not None:
            self._observer.on_call(provider.name, method, "ok")
        return value

    def _failed(self, provider: _Provider, method: str, exc: Retryable | Rejected) -> None:
        provider.failures += 1
        if self._observer is not None:
            outcome = "retryable" if isinstance(exc, Retryable) else "rejected"
            self._observer.on_call(provider.name, method, outcome)
        if not isinstance(exc, Retryable) or not exc.retry_after:
            return
        if self._gate is not None and provider.limit is not None:
            # the vendor said when to come back: nobody else spends this limit before then
            until = self._clock.now() + timedelta(seconds=exc.retry_after)
            self._gate.pause(provider.limit.limit_id, until)


def _no_answer(key: CacheKey, failures: list[tuple[str, TandemError]]) -> TandemError:
    """`ProvidersDown` if any failure was transient, else the primary's `Rejected`."""
    transient = [exc for _, exc in failures if isinstance(exc, Retryable)]
    if not transient:
        return failures[0][1]
    hints = [exc.retry_after for exc in transient if exc.retry_after is not None]
    described = {name: f"{type(exc).__name__}: {exc}" for name, exc in failures}
    each = "; ".join(f"{name}: {text}" for name, text in described.items())
    message = f"market data down: no provider answered {key.method}{key.args!r}: {each}"
    return ProvidersDown(message, min(hints) if hints else None, described)


def _fresh(value: V) -> V:
    """A list answer is copied, so a caller that changes it cannot change the cache."""
    if isinstance(value, list):
        return cast(V, list(value))
    return value
