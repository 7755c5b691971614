"""Benchmark: provider calls saved by the market-data cache on a replayed scenario.

In-process: `engine.market_service.MarketDataService` over `ReplayMarketData` for the
default scenario (`spy-2013-10`), no Ray, no actor hop (the MarketData actor runs the same
service). The same request schedule runs twice, cache off (TTL 0: every request reaches the
provider) and cache on (60 s TTL), on a `SimClock` moved to each request's time.

Request pattern, for each replayed minute t (a minute-bar close of the scenario timeline):

- Alerts: at every 5-minute bar close, K = 3 TradingView alerts on SPY (several strategies
  watching the same chart). For each alert, the enrichment pipeline asks, as of t + 0-2 s:
  the SPY quote, the last 60 one-minute bars, the daily bars of ~200 sessions (290 calendar
  days), and the option chain of the nearest expiry at least a day out. Windows come from
  the alert's bar time, which the alert carries, so every caller asks for the same window.
- Agents: A = 4 shadow agents (technical, context, risk, ORB) each ask the same four things
  for each alert, as of t + 2-20 s.
- Every minute: the position refresher marks two open positions (the ATM call and put of
  that expiry, chosen at the session's first minute outside the measured requests) at
  t + 30 s with their option quotes and the SPY quote; the exit monitor asks the SPY quote
  at t + 45 s.

Per 5 minutes that is 64 + 4 x 4 = 80 requests for 6 + 4 x 3 = 18 distinct answers, so the
expected hit rate is 62 / 80 = 77.5 % (goal: >= 70 %). `--smoke` replays one session-hour;
the full run replays the whole scenario (6 sessions). Quote and bar answers of both runs
are checked equal before anything is reported.

Run from the repo root: `.venv/bin/python bench/marketdata.py [--smoke]`.
The last line printed is one JSON object; ratio = cached_ms / uncached_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.adapters.replay import ReplayMarketData  # noqa: E402
from engine.clock import SimClock  # noqa: E402
from engine.market_service import MarketDataService  # noqa: E402
from engine.marketdata import MarketDataPort, OptionContract, Right, Timeframe  # noqa: E402
from engine.scenarios import DEFAULT_SCENARIO  # noqa: E402

SYMBOL = "SPY"
ALERTS_EVERY_MIN = 5
ALERTS = 3
AGENTS = 4
SMOKE_MINUTES = 60
GOAL_HIT_RATE = 0.7
SEED = 20131004
VISIBILITY_ONLY = {"quote", "bars"}  # answers that must be equal with the cache on and off


@dataclass(frozen=True)
class Request:
    at: datetime
    method: str
    ask: Callable[[MarketDataPort, datetime], Awaitable[Any]]


def enrichment(bar_close: datetime, expiry: date) -> list[tuple[str, Any]]:
    """The four questions asked about one alert whose bar closed at `bar_close`."""
    minute_start = bar_close - timedelta(minutes=60)
    day_start = bar_close - timedelta(days=290)
    return [
        ("quote", lambda p, t: p.quote(SYMBOL, t)),
        ("bars", lambda p, t: p.bars(SYMBOL, Timeframe.MINUTE, minute_start, bar_close, t)),
        ("bars", lambda p, t: p.bars(SYMBOL, Timeframe.DAY, day_start, bar_close, t)),
        ("option_chain", lambda p, t: p.option_chain(SYMBOL, expiry, t)),
    ]


def minute_requests(
    t: datetime, expiry: date, positions: list[OptionContract], rng: random.Random
) -> list[Request]:
    """Every request of one replayed minute, in time order."""
    out: list[Request] = []
    if t.minute % ALERTS_EVERY_MIN == 0:
        for _alert in range(ALERTS):
            for method, ask in enrichment(t, expiry):
                out.append(Request(t + timedelta(seconds=rng.uniform(0, 2)), method, ask))
            for _agent in range(AGENTS):
                for method, ask in enrichment(t, expiry):
                    out.append(Request(t + timedelta(seconds=rng.uniform(2, 20)), method, ask))
    marks = t + timedelta(seconds=30)
    out.append(Request(marks, "quote", lambda p, at: p.quote(SYMBOL, at)))
    for contract in positions:
        out.append(Request(marks, "option_quote", lambda p, at, c=contract: p.option_quote(c, at)))
    out.append(Request(t + timedelta(seconds=45), "quote", lambda p, at: p.quote(SYMBOL, at)))
    return sorted(out, key=lambda r: r.at)


async def session_setup(replay: ReplayMarketData, t: datetime) -> tuple[date, list[OptionContract]]:
    """The nearest expiry at least a day out, and the ATM call and put held on it."""
    expiry = next(e for e in replay.expiries(SYMBOL, t) if e > t.date())
    spot = (await replay.quote(SYMBOL, t)).last
    chain = await replay.option_chain(SYMBOL, expiry, t)
    strike = min({q.contract.strike for q in chain}, key=lambda k: abs(k - spot))
    return expiry, [OptionContract(SYMBOL, expiry, strike, right) for right in Right]


async def schedule(replay: ReplayMarketData, minutes: int | None) -> list[Request]:
    timeline = replay.timeline()[:minutes]
    rng = random.Random(SEED)
    requests: list[Request] = []
    day: date | None = None
    for t in timeline:
        if t.date() != day:
            day = t.date()
            expiry, positions = await session_setup(replay, t)
        requests.extend(minute_requests(t, expiry, positions, rng))
    return requests


def fingerprint(answer: Any) -> Any:
    if isinstance(answer, list):
        return (len(answer), answer[-1] if answer else None)
    return answer


async def run(
    replay: ReplayMarketData, requests: list[Request], ttl_s: float
) -> tuple[MarketDataService, float, list[Any]]:
    clock = SimClock(requests[0].at)
    service = MarketDataService(replay, clock=clock, cache_ttl_s=ttl_s)
    prints: list[Any] = []
    started = time.perf_counter()
    for request in requests:
        clock.advance_to(request.at)
        answer = await request.ask(service, request.at)
        if request.method in VISIBILITY_ONLY:
            prints.append(fingerprint(answer))
    return service, (time.perf_counter() - started) * 1000, prints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one session-hour")
    args = parser.parse_args()
    replay = ReplayMarketData(DEFAULT_SCENARIO)
    requests = asyncio.run(schedule(replay, SMOKE_MINUTES if args.smoke else None))
    minutes = len({r.at.replace(second=0, microsecond=0) for r in requests})
    uncached, uncached_ms, plain = asyncio.run(run(replay, requests, ttl_s=0))
    cached, cached_ms, served = asyncio.run(run(replay, requests, ttl_s=60))
    if plain != served:
        raise SystemExit("cached quote/bar answers differ from uncached ones")
    off, on = uncached.stats(), cached.stats()
    saved = off.provider_calls - on.provider_calls
    print(f"in-process MarketDataService over ReplayMarketData({DEFAULT_SCENARIO!r}); no Ray")
    print(f"minutes {minutes}  requests {len(requests)}  (alerts every {ALERTS_EVERY_MIN} min)")
    print(f"cache off: {off.provider_calls:7d} provider calls  {uncached_ms:9.1f} ms")
    print(f"cache on:  {on.provider_calls:7d} provider calls  {cached_ms:9.1f} ms")
    print(f"saved {saved} calls; hit rate {on.hit_rate:.1%} (goal {GOAL_HIT_RATE:.0%})")
    result = {
        "bench": "marketdata",
        "mode": "in-process",
        "scenario": DEFAULT_SCENARIO,
        "minutes": minutes,
        "requests": len(requests),
        "provider_calls_cached": on.provider_calls,
        "provider_calls_uncached": off.provider_calls,
        "saved": saved,
        "hit_rate": round(on.hit_rate, 4),
        "goal_hit_rate": GOAL_HIT_RATE,
        "cached_ms": round(cached_ms, 1),
        "uncached_ms": round(uncached_ms, 1),
        "ratio": round(cached_ms / uncached_ms, 3),
        "smoke": args.smoke,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
