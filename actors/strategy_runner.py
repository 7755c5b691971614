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
from engine.calendar import xnys_calendar
from engine.clock import ensure_utc
from engine.errors import Rejected, Retryable
from engine.marketdata import Bar, Timeframe
from engine.strategies.base import MinuteBars
from engine.strategies.registry import default_registry

log = logging.getLogger(__name__)
_US = timedelta(microseconds=1)
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
        self._strategy = default_registry().get(strategy)
        self._params = self._strategy.validate(params)
        self._md = RemoteMarket(marketdata)
        self._symbols = [s.upper() for s in symbols]
        self._url = webhook_url
        self._secret = secret
        self._start = xnys_calendar().session_open(first_session)
        self._sent: set[str] = set()
        self._bars: dict[str, list[Bar]] = {s: [] for s in self._symbols}
        self._client: httpx.AsyncClient | None = None

    async def tick(self, now: datetime) -> int:
        """Post the alerts of the bars closed by `now` not yet sent; how many were posted."""
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
            known = (at - datetime(1970, 1, 1, tzinfo=at.tzinfo)) // _US
            window = MinuteBars.from_bars(symbol, bars, known_until_us=known)
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
