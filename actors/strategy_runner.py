"""StrategyRunner: a registry strategy trading live, through the same door as TradingView.

On every `tick(now)` it reads each symbol's minute bars since its first session from the
MarketData actor (as of `now`, so only closed bars), asks the strategy for the alerts of
the newest bars (`Strategy.latest`) and POSTs each one it has not sent before to the
webhook, with the webhook secret, exactly as TradingView would. From there the alert is a
signal like any other: dedupe, Engine 1, the router and Engine 2. A backtest feeds the
same strategy's whole-series alerts (`Strategy.alerts`) to the same engine code;
tests/unit/test_strategies.py checks that `latest` over a growing window yields exactly
those alerts.

A plain class; `actors/system.py` wraps it with `ray.remote`. On the live clock the
Ticker ticks it; in a replay the replay driver ticks it at each simulated minute.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from actors.marketdata import RemoteMarket
from engine.adapters.replay_store import to_us
from engine.calendar import xnys_calendar
from engine.clock import ensure_utc
from engine.errors import Rejected, Retryable
from engine.marketdata import Bar, Timeframe
from engine.strategies.base import MinuteBars
from engine.strategies.registry import StrategyState, default_registry

log = logging.getLogger(__name__)
_MINUTE = timedelta(minutes=1)


class StrategyRunner:
    def __init__(  # noqa: PLR0917
        self,
        marketdata: Any,
        strategy: str,
        params: Mapping[str, object],
        symbols: Sequence[str],
        webhook_url: str,
        secret: str,
        first_session: date,
    ) -> None:
        self._registry = default_registry()
        self._strategy = self._registry.get(strategy)
        self._registry.enable(strategy)
        started = self._registry.start(strategy, params)  # validates the parameters
        self._params = dict(started.params or {})
        self._md = RemoteMarket(marketdata)
        self._symbols = [s.upper() for s in symbols]
        self._url = webhook_url
        self._secret = secret
        self._start = xnys_calendar().session_open(first_session)
        self._sent: set[str] = set()
        self._bars: dict[str, list[Bar]] = {s: [] for s in self._symbols}
        self._client: httpx.AsyncClient | None = None

    async def stop(self) -> str:
        """Stop posting (the registry's lifecycle: running → enabled); its state."""
        return str(self._registry.stop(self.name).state)

    async def start(self) -> str:
        """Post again with the same parameters (enabled → running); its state."""
        return str(self._registry.start(self.name, self._params).state)

    async def state(self) -> str:
        return str(self._registry.status(self.name).state)

    async def tick(self, now: datetime) -> int:
        """Post the alerts of the bars closed by `now` not yet sent; how many were posted.
        Nothing while the strategy is stopped."""
        if self._registry.status(self.name).state is not StrategyState.RUNNING:
            return 0
        at = ensure_utc(now)
        posted = 0
        for symbol in self._symbols:
            bars = self._bars[symbol]
            since = bars[-1].ts + _MINUTE if bars else self._start
            try:  # only the bars closed since the last tick: closed bars never change
                bars.extend(await self._md.bars(symbol, Timeframe.MINUTE, since, at, at))
            except (Rejected, Retryable) as exc:
                log.warning("strategy %s: no %s bars at %s: %s", self.name, symbol, at, exc)
                continue
            if not bars:
                continue
            window = MinuteBars.from_bars(symbol, bars, known_until_us=to_us(at))
            for alert in self._strategy.latest(window, self._params):
                key = f"{alert['symbol']}|{alert['timestamp']}|{alert['action']}"
                if key in self._sent:
                    continue
                await self._post(alert)
                self._sent.add(key)
                posted += 1
        return posted

    @property
    def name(self) -> str:
        return str(self._strategy.name)

    async def _post(self, alert: Mapping[str, object]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30)
        response = await self._client.post(self._url, json={**alert, "secret": self._secret})
        if response.status_code not in (200, 201):  # 200: a duplicate, already a signal
            raise Rejected(
                "webhook_refused",
                f"the webhook answered {response.status_code}: {response.text[:500]}",
            )
