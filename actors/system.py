"""The one place where actor classes become Ray actors, and how the system starts.

Actors that mostly wait ask for `num_cpus=0`, so a second deployment or task never hangs
waiting for a CPU on a small machine. The Store is pinned to the head node: DuckDB is a
single-writer file on that node's disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray

from actors.alpaca_broker import AlpacaExecutor
from actors.analytics import AnalyticsActor
from actors.backtest import run_shard
from actors.clock import ClockActor, RemoteClock
from actors.engine_two import AgentActor, RouterConfig, ShadowExecutor, StrategyRouter
from actors.executor import PaperExecutor, RemoteBroker
from actors.flags import FeatureFlagsActor
from actors.marketdata import MarketDataActor, ProviderSpec, ReplayProviders
from actors.monitor import PositionMonitor
from actors.pipeline import OrderCreator, SignalProcessor
from actors.store import StoreActor
from actors.strategy_runner import StrategyRunner
from actors.throttler import VENDOR_LIMITS, ThrottlerActor
from actors.ticker import Ticker
from actors.tracker import OrderTracker
from actors.user_stream import UserStream
from engine.adapters.alpaca_trading import alpaca_access
from engine.adapters.replay import bundled_data_dir
from engine.adapters.symbol_file import load_symbol_table
from engine.agents.base import Agent
from engine.agents.panel import panel
from engine.meta import MetaConfig
from engine.orders import PlanConfig
from engine.protections import create_default_protections
from engine.scenarios import get_scenario
from engine.settings import Settings
from engine.symbols import SymbolTable
from engine.throttle import RateLimit

NAMESPACE = "tandem"
STORE_NAME = "tandem-store"
HEAD_NODE_RESOURCE = "node:__internal_head__"

RemoteStoreActor: Any = ray.remote(StoreActor)


def start_store(settings: Settings, timeout_s: float = 60.0) -> Any:
    """Create (or find) the named Store actor and wait until its database is open."""
    handle = RemoteStoreActor.options(
        name=STORE_NAME,
        namespace=NAMESPACE,
        get_if_exists=True,
        num_cpus=0,
        max_restarts=-1,
        max_concurrency=1000,
        resources={HEAD_NODE_RESOURCE: 0.001},
    ).remote(
        str(settings.db_path),
        str(settings.events_dir),
        max_batch=settings.store_max_batch,
        export_interval_s=settings.export_interval_s,
        export_max_rows=settings.export_max_rows,
    )
    ray.get(handle.start.remote(), timeout=timeout_s)
    return handle


def store_handle() -> Any:
    return ray.get_actor(STORE_NAME, namespace=NAMESPACE)


def stop_store(handle: Any, timeout_s: float = 30.0) -> None:
    """Drain the Store's queue, land the event log, close the database."""
    ray.get(handle.stop.remote(), timeout=timeout_s)


# --- market data ---------------------------------------------------------------------

MARKETDATA_NAME = "tandem-marketdata"
THROTTLER_NAME = "tandem-throttler"

RemoteThrottlerActor = ray.remote(ThrottlerActor)
RemoteMarketDataActor = ray.remote(MarketDataActor)


def start_throttler(
    limits: Sequence[RateLimit] = VENDOR_LIMITS,
    *,
    name: str = THROTTLER_NAME,
    max_queue: int = 100,
    timeout_s: float = 60.0,
    store: Any = None,
) -> Any:
    """Create (or find) the named Throttler actor shared by every vendor caller; its
    warnings go to `store`'s event log when given."""
    handle: Any = _waiting_actor(RemoteThrottlerActor, name).remote(
        tuple(limits), max_queue=max_queue, store=store
    )
    ray.get(handle.waiting.remote(), timeout=timeout_s)
    return handle


def start_marketdata(
    spec: ProviderSpec | None = None,
    throttler: Any = None,
    *,
    name: str = MARKETDATA_NAME,
    timeout_s: float = 60.0,
    store: Any = None,
) -> Any:
    """Create (or find) the named MarketData actor (replay of the default scenario unless
    `spec` says otherwise), charging vendor calls to `throttler` when given."""
    handle: Any = _waiting_actor(RemoteMarketDataActor, name).remote(
        spec or ReplayProviders(), throttler, store=store
    )
    ray.get(handle.stats.remote(), timeout=timeout_s)
    return handle


# --- the run's clock and Engine 1's workers -------------------------------------------

CLOCK_NAME = "tandem-clock"
PROCESSOR_NAME = "tandem-signal-processor"
ORDER_CREATOR_NAME = "tandem-order-creator"
EXECUTOR_NAME = "tandem-paper-executor"
TRACKER_NAME = "tandem-order-tracker"
ALPACA_BROKER_NAME = "tandem-alpaca-broker"
USER_STREAM_NAME = "tandem-user-stream"

RemoteClockActor: Any = ray.remote(ClockActor)
RemoteSignalProcessor: Any = ray.remote(SignalProcessor)
RemoteOrderCreator: Any = ray.remote(OrderCreator)
RemotePaperExecutor: Any = ray.remote(PaperExecutor)
RemoteOrderTracker: Any = ray.remote(OrderTracker)
RemoteAlpacaExecutor: Any = ray.remote(AlpacaExecutor)
RemoteUserStream: Any = ray.remote(UserStream)


def _waiting_actor(remote: Any, name: str) -> Any:
    return remote.options(
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        num_cpus=0,
        max_restarts=-1,
        max_concurrency=1000,
    )


def start_clock(settings: Settings, timeout_s: float = 60.0) -> Any:
    """The run's clock: simulated from TANDEM_SIM_START when TANDEM_CLOCK=sim."""
    start = settings.sim_start if settings.clock == "sim" else None
    handle = _waiting_actor(RemoteClockActor, CLOCK_NAME).remote(start)
    ray.get(handle.now.remote(), timeout=timeout_s)
    return handle


def start_engine_one(
    settings: Settings,
    store: Any,
    marketdata: Any,
    clock: Any,
    timeout_s: float = 60.0,
    *,
    router: Any = None,
) -> dict[str, Any]:
    """SignalProcessor → OrderCreator → OrderTracker → the broker (TANDEM_BROKER: the paper
    broker actor, or Alpaca's adapter actor fed back by the UserStream), each holding the
    next one's handle. The tracker reconciles with the broker first. With `router` (Engine
    2's StrategyRouter), the processor hands it every signal it has decided."""
    symbols = load_symbol_table(bundled_data_dir() / "symbol_properties.csv")
    plan = PlanConfig(
        instrument_mode=settings.instrument_mode,
        target_dte=settings.target_dte,
        opposite_entry=settings.opposite_entry,
    )
    executor, broker = start_broker(settings, clock, marketdata, symbols)
    tracker = _waiting_actor(RemoteOrderTracker, TRACKER_NAME).remote(
        store, broker, RemoteClock(clock)
    )
    ray.get(tracker.reconcile.remote(), timeout=timeout_s)  # start-up: our book vs the broker's
    stream = start_user_stream(settings, tracker, clock)
    creator = _waiting_actor(RemoteOrderCreator, ORDER_CREATOR_NAME).remote(
        store, marketdata, tracker, symbols, plan
    )
    processor = _waiting_actor(RemoteSignalProcessor, PROCESSOR_NAME).remote(
        store,
        marketdata,
        creator,
        create_default_protections(settings),
        opposite_entry=settings.opposite_entry,
        router=router,
    )
    return {
        "executor": executor,
        "tracker": tracker,
        "order_creator": creator,
        "processor": processor,
        **({"user_stream": stream} if stream is not None else {}),
    }


def start_broker(
    settings: Settings,
    clock: Any,
    marketdata: Any,
    symbols: SymbolTable | None,
    *,
    name: str | None = None,
    timeout_s: float = 10.0,
) -> tuple[Any, RemoteBroker]:
    """The broker actor TANDEM_BROKER names and the tracker's `Broker` over it. Alpaca's
    adapter gets its own actor, like the paper broker: one HTTP client for every caller,
    and a submit lost with the actor is `Ambiguous` on the tracker's side."""
    if settings.broker == "alpaca":
        handle = _waiting_actor(RemoteAlpacaExecutor, name or ALPACA_BROKER_NAME).remote(
            alpaca_access(settings), RemoteClock(clock), timeout_s
        )
        return handle, RemoteBroker(handle, "alpaca")
    handle = _waiting_actor(RemotePaperExecutor, name or EXECUTOR_NAME).remote(
        marketdata, RemoteClock(clock), symbols, settings.slippage_ticks
    )
    return handle, RemoteBroker(handle)


def start_user_stream(
    settings: Settings,
    tracker: Any,
    clock: Any,
    *,
    name: str = USER_STREAM_NAME,
    backoff_base_s: float = 1.0,
) -> Any | None:
    """With TANDEM_BROKER=alpaca, the UserStream feeding Alpaca's trade updates to
    `tracker`, running (a second start finds it running); None for the paper broker."""
    if settings.broker != "alpaca":
        return None
    handle = _waiting_actor(RemoteUserStream, name).remote(
        tracker, RemoteClock(clock), alpaca_access(settings), backoff_base_s=backoff_base_s
    )
    handle.run.remote()  # fire and forget, like the Ticker
    return handle


def named(name: str) -> Any:
    return ray.get_actor(name, namespace=NAMESPACE)


# --- position monitor and its ticker ---------------------------------------------------

MONITOR_NAME = "tandem-position-monitor"
TICKER_NAME = "tandem-ticker"
TICK_INTERVAL_S = 5.0  # live: marks and exit checks every 5 s of wall time

RemotePositionMonitor: Any = ray.remote(PositionMonitor)
RemoteTicker: Any = ray.remote(Ticker)
# A backtest shard: one CPU while it runs; a failed shard is reported, never retried.
RemoteShard: Any = ray.remote(num_cpus=1, max_retries=0)(run_shard)


def start_monitor(
    settings: Settings,
    store: Any,
    marketdata: Any,
    workers: dict[str, Any],
    clock: Any,
) -> dict[str, Any]:
    """The PositionMonitor (marks, exits through the order tracker) and, on the live clock, the
    Ticker that ticks it and the workers' sweeps. A replay has no ticker: its driver ticks
    the monitor at each simulated minute, once the pipeline is idle."""
    monitor = _waiting_actor(RemotePositionMonitor, MONITOR_NAME).remote(
        store, marketdata, workers["tracker"]
    )
    if settings.clock == "sim":
        return {"monitor": monitor}
    targets = [monitor, workers["processor"], workers["order_creator"], workers["tracker"]]
    names = ["position-monitor", "signal-sweep", "order-sweep", "order-tracker"]
    if "strategy" in workers:  # `tandem run --strategy NAME`: it posts its alerts live
        targets.append(workers["strategy"])
        names.append("strategy")
    for key, name in (("shadow", "shadow-monitor"), ("router", "route-sweep")):
        if key in workers:  # Engine 2's shadow positions and unrouted signals
            targets.append(workers[key])
            names.append(name)
    ticker = _waiting_actor(RemoteTicker, TICKER_NAME).remote(
        RemoteClock(clock), targets, TICK_INTERVAL_S, names
    )
    ticker.run.remote()  # fire and forget: a second start finds it running and returns
    return {"monitor": monitor, "ticker": ticker}


STRATEGY_NAME = "tandem-strategy-runner"
RemoteStrategyRunner: Any = ray.remote(StrategyRunner)


def start_strategy_runner(  # noqa: PLR0917
    settings: Settings,
    marketdata: Any,
    strategy: str,
    params: dict[str, object],
    symbols: tuple[str, ...],
    first_session: Any,
) -> Any:
    """A registry strategy posting its alerts to this Tandem's own webhook."""
    url = f"http://{settings.host}:{settings.port}/webhook"
    secret = settings.webhook_secret.get_secret_value()
    return _waiting_actor(RemoteStrategyRunner, STRATEGY_NAME).remote(
        marketdata, strategy, params, symbols, url, secret, first_session
    )


# --- Engine 2: flags, agents, shadow executor, router ---------------------------------

FLAGS_NAME = "tandem-feature-flags"
ANALYTICS_NAME = "tandem-analytics"
ROUTER_NAME = "tandem-strategy-router"
SHADOW_NAME = "tandem-shadow-executor"
AGENT_PREFIX = "tandem-agent-"

RemoteFeatureFlags: Any = ray.remote(FeatureFlagsActor)
RemoteAnalytics: Any = ray.remote(AnalyticsActor)
RemoteAgent: Any = ray.remote(AgentActor)
RemoteShadowExecutor: Any = ray.remote(ShadowExecutor)
RemoteStrategyRouter: Any = ray.remote(StrategyRouter)


def all_agents() -> list[Agent]:
    return panel()


def start_engine_two(
    settings: Settings, store: Any, marketdata: Any, clock: Any, timeout_s: float = 60.0
) -> dict[str, Any]:
    """The FeatureFlags actor, one actor per agent, the ShadowExecutor and the router. The
    shadow executor gets no broker, only market data and the Store."""
    symbols = load_symbol_table(bundled_data_dir() / "symbol_properties.csv")
    flags = _waiting_actor(RemoteFeatureFlags, FLAGS_NAME).remote(store, RemoteClock(clock))
    agents = {
        a.name: _waiting_actor(RemoteAgent, AGENT_PREFIX + a.name).remote(a) for a in all_agents()
    }
    plan = PlanConfig(instrument_mode=settings.instrument_mode, target_dte=settings.target_dte)
    shadow = _waiting_actor(RemoteShadowExecutor, SHADOW_NAME).remote(
        store, marketdata, RemoteClock(clock), symbols, plan, settings.slippage_ticks
    )
    first = get_scenario(settings.scenario).start if settings.clock == "sim" else None
    config = RouterConfig(
        experiment_id=settings.experiment_id,
        unit=settings.experiment_unit,
        first_session=first,
        meta=MetaConfig(threshold=settings.meta_threshold),
        snapshots=str(settings.snapshots_dir),
    )
    router = _waiting_actor(RemoteStrategyRouter, ROUTER_NAME).remote(
        store, marketdata, flags, agents, shadow, RemoteClock(clock), config, ray.put
    )
    analytics = _waiting_actor(RemoteAnalytics, ANALYTICS_NAME).remote(str(settings.events_dir))
    ray.get(flags.current.remote(), timeout=timeout_s)
    return {
        "flags": flags,
        "agents": agents,
        "shadow": shadow,
        "router": router,
        "analytics": analytics,
    }
