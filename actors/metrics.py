"""The one metrics module: everything goes through `ray.util.metrics`.

Metrics created here reach Ray's Prometheus endpoint and the Ray dashboard from any actor
or Serve replica. Outside Ray (unit tests) the same objects exist and record nothing.
Names are prefixed `tandem_`; later modules add theirs through `counter`/`histogram`/`gauge`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ray.util import metrics as ray_metrics

_LATENCY_BOUNDARIES_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
_BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

_counters: dict[str, ray_metrics.Counter] = {}
_histograms: dict[str, ray_metrics.Histogram] = {}
_gauges: dict[str, ray_metrics.Gauge] = {}


def counter(name: str, description: str, tag_keys: Sequence[str] = ()) -> ray_metrics.Counter:
    full = f"tandem_{name}"
    if full not in _counters:
        _counters[full] = ray_metrics.Counter(full, description, tag_keys=tuple(tag_keys))
    return _counters[full]


def histogram(
    name: str,
    description: str,
    boundaries: Sequence[float] = _LATENCY_BOUNDARIES_S,
    tag_keys: Sequence[str] = (),
) -> ray_metrics.Histogram:
    full = f"tandem_{name}"
    if full not in _histograms:
        _histograms[full] = ray_metrics.Histogram(
            full, description, boundaries=list(boundaries), tag_keys=tuple(tag_keys)
        )
    return _histograms[full]


def gauge(name: str, description: str, tag_keys: Sequence[str] = ()) -> ray_metrics.Gauge:
    full = f"tandem_{name}"
    if full not in _gauges:
        _gauges[full] = ray_metrics.Gauge(full, description, tag_keys=tuple(tag_keys))
    return _gauges[full]


class StoreMetrics:
    """The Store's figures: batch size, commit latency, writes and failed writes."""

    def __init__(self) -> None:
        self._batch = histogram("store_batch_size", "requests per group commit", _BATCH_BOUNDARIES)
        self._latency = histogram("store_commit_seconds", "time to plan, write and commit")
        self._writes = counter("store_writes_total", "write requests committed or failed")
        self._failed = counter("store_write_failures_total", "write requests that failed")
        self._exported = counter("eventlog_exported_total", "events landed as Parquet")
        self._lag = gauge("eventlog_lag_events", "committed events not yet landed as Parquet")

    def on_batch(self, size: int, commit_seconds: float, failed: int) -> None:
        self._batch.observe(size)
        self._latency.observe(commit_seconds)
        self._writes.inc(size)
        if failed:
            self._failed.inc(failed)

    def on_export(self, rows: int, lag: int) -> None:
        if rows:
            self._exported.inc(rows)
        self._lag.set(lag)


_WAIT_BOUNDARIES_S = [0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]


class MarketDataMetrics:
    """The MarketData actor's figures: cache hit rate, provider calls, fallbacks, breakers.

    Implements `engine.market_service.ServiceObserver`. Breaker state gauge: 0 closed,
    1 half-open, 2 open.
    """

    def __init__(self) -> None:
        self._hits = counter(
            "marketdata_cache_hits_total", "answers served by the cache", ["method"]
        )
        self._misses = counter(
            "marketdata_cache_misses_total", "lookups the cache could not serve", ["method"]
        )
        self._hit_rate = gauge("marketdata_cache_hit_rate", "cache hits / lookups since start")
        self._calls = counter(
            "marketdata_provider_calls_total",
            "requests that reached a provider, by outcome",
            ["provider", "method", "outcome"],
        )
        self._fallbacks = counter(
            "marketdata_fallbacks_total", "answers given by the fallback", ["provider", "method"]
        )
        self._breaker = gauge(
            "marketdata_breaker_state", "0 closed, 1 half-open, 2 open", ["provider"]
        )
        self._transitions = counter(
            "marketdata_breaker_transitions_total",
            "circuit breaker state changes",
            ["provider", "from_state", "to_state"],
        )
        self._lookups = 0
        self._hit_count = 0

    def on_lookup(self, method: str, hit: bool) -> None:
        (self._hits if hit else self._misses).inc(1, tags={"method": method})
        self._lookups += 1
        self._hit_count += int(hit)
        self._hit_rate.set(self._hit_count / self._lookups)

    def on_call(self, provider: str, method: str, outcome: str) -> None:
        self._calls.inc(1, tags={"provider": provider, "method": method, "outcome": outcome})

    def on_fallback(self, provider: str, method: str) -> None:
        self._fallbacks.inc(1, tags={"provider": provider, "method": method})

    def on_breaker(self, provider: str, level: int) -> None:
        self._breaker.set(level, tags={"provider": provider})

    def on_transition(self, provider: str, old: str, new: str, level: int) -> None:
        self._transitions.inc(1, tags={"provider": provider, "from_state": old, "to_state": new})
        self.on_breaker(provider, level)


class ThrottlerMetrics:
    """The Throttler actor's figures: window use, waits and 90 % warnings.

    Implements `engine.throttle.ThrottleObserver`; `on_window` is fed by the actor after
    each grant for every window the grant charged.
    """

    def __init__(self) -> None:
        self._used = gauge(
            "throttler_used_ratio", "weight granted in the current window / limit", ["limit_id"]
        )
        self._waits = histogram(
            "throttler_wait_seconds",
            "time a request waited for its grant",
            _WAIT_BOUNDARIES_S,
            ["limit_id"],
        )
        self._warnings = counter(
            "throttler_warnings_total", "grants that left a window at or above 90 %", ["limit_id"]
        )

    def on_grant(self, limit_id: str, weight: int, waited_s: float) -> None:
        self._waits.observe(waited_s, tags={"limit_id": limit_id})

    def on_usage(self, limit_id: str, used: int, limit: int) -> None:
        self._warnings.inc(1, tags={"limit_id": limit_id})

    def on_window(self, limit_id: str, used: int, limit: int) -> None:
        self._used.set(used / limit, tags={"limit_id": limit_id})


class TickerMetrics:
    """The Ticker's figures: how long each target took to answer a tick, and its failures."""

    def __init__(self) -> None:
        self._seconds = histogram(
            "tick_seconds", "time a worker took to answer one tick", tag_keys=["target"]
        )
        self._failures = counter(
            "tick_failures_total", "ticks a worker answered with an error", ["target"]
        )

    def on_tick(self, target: str, seconds: float, failed: bool) -> None:
        self._seconds.observe(seconds, tags={"target": target})
        if failed:
            self._failures.inc(1, tags={"target": target})


class MonitorMetrics:
    """The PositionMonitor's figures: positions marked, exits by reason, failures."""

    def __init__(self) -> None:
        self._marked = counter("positions_marked_total", "position marks written")
        self._exits = counter("exits_total", "exit orders the exit rules created", ["reason"])
        self._errors = counter(
            "monitor_errors_total", "positions a tick could not mark, write or exit"
        )

    def on_tick(self, marked: int, errors: int) -> None:
        if marked:
            self._marked.inc(marked)
        if errors:
            self._errors.inc(errors)

    def on_exit(self, reason: str) -> None:
        self._exits.inc(1, tags={"reason": reason})


class PipelineMetrics:
    """Engine 1's workers: decisions by outcome and errors by stage (an error on one signal
    never stops the others; its rate is this counter)."""

    def __init__(self) -> None:
        self._decisions = counter(
            "signals_decided_total",
            "signals decided, by decision and reason",
            ["decision", "reason"],
        )
        self._orders = counter("orders_created_total", "orders the OrderCreator inserted")
        self._errors = counter(
            "pipeline_errors_total", "signals or orders a worker failed on", ["stage"]
        )

    def on_decision(self, approved: bool, reason: str | None) -> None:
        decision = "approved" if approved else "rejected"
        self._decisions.inc(1, tags={"decision": decision, "reason": reason or ""})

    def on_order(self) -> None:
        self._orders.inc(1)

    def on_error(self, stage: str) -> None:
        self._errors.inc(1, tags={"stage": stage})


class KillSwitchMetrics:
    """The kill switch's state as a gauge (1 on, 0 off), set by the Store actor at start and
    on every change: what the alert rule `TandemKillSwitchOn` watches."""

    def __init__(self) -> None:
        self._on = gauge("kill_switch_on", "1 while the kill switch is on, else 0")

    def set(self, on: bool) -> None:
        self._on.set(1.0 if on else 0.0)
