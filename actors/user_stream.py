"""UserStream: Alpaca's `trade_updates` stream into the OrderTracker.

- `TradeUpdateFeed` is one connection: open the websocket, authenticate, listen to
  `trade_updates` (protocol in `engine.adapters.alpaca_stream`), then hand out the updates
  the tracker acts on, in the order they arrive, from binary or text frames.
- `UserStream` keeps a feed open for as long as it runs: each update goes to the tracker's
  `on_update`; after every successful connection, the first one included, it asks the
  tracker to `reconcile()`. Alpaca does not replay what it sent while nobody listened, so
  a fill during a disconnect is found by the tracker looking the order up.
- A failed or dropped connection waits `backoff_delay(n)` on the run's clock (1 s, 2 s,
  4 s ... 30 s), `n` counting failures since the last good connection, then reconnects.
  Refused keys are retried the same way and reported in `status()`.

The keys leave this process only in the auth frame. The websocket library logs frames at
DEBUG; its logger here is held at INFO, so a DEBUG log level never prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from actors.clock import ClockLink, sleep_unless_stopped
from actors.metrics import counter
from engine.adapters.alpaca_stream import (
    Other,
    StreamMessage,
    TradeUpdate,
    auth_message,
    expect_authorized,
    expect_listening,
    listen_message,
    parse_frame,
)
from engine.adapters.alpaca_trading import AlpacaAccess
from engine.errors import TandemError
from engine.retry import backoff_delay

log = logging.getLogger(__name__)
_WIRE_LOG = logging.getLogger(f"{__name__}.wire")
_WIRE_LOG.setLevel(logging.INFO)

# What ends one connection and calls for the next: refused, dropped, timed out, refused
# keys, a handshake answer we did not expect.
CONNECTION_FAILURES = (OSError, TimeoutError, WebSocketException, TandemError, ValueError)


class TradeUpdateFeed:
    """One authenticated connection to Alpaca's trading stream, listening to trade_updates."""

    def __init__(
        self, url: str, key_id: str, secret_key: str, *, open_timeout_s: float = 10.0
    ) -> None:
        self._url = url
        self._key_id = key_id
        self._secret_key = secret_key
        self._timeout = open_timeout_s
        self._ws: ClientConnection | None = None

    def __repr__(self) -> str:
        return f"TradeUpdateFeed(url={self._url!r})"

    async def open(self) -> None:
        """Connect, authenticate and listen; raises one of `CONNECTION_FAILURES`."""
        self._ws = await connect(self._url, open_timeout=self._timeout, logger=_WIRE_LOG)
        await self._ws.send(auth_message(self._key_id, self._secret_key))
        expect_authorized(await self._handshake_answer())
        await self._ws.send(listen_message())
        expect_listening(await self._handshake_answer())

    async def next_update(self) -> TradeUpdate:
        """The next update the tracker acts on; raises `ConnectionClosed` when dropped."""
        ws = self._connection()
        while True:
            frame = await ws.recv()
            try:
                message = parse_frame(frame)
            except ValueError as exc:
                log.warning("unreadable trade update skipped (reconciliation covers it): %s", exc)
                continue
            if isinstance(message, TradeUpdate):
                return message

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _handshake_answer(self) -> StreamMessage:
        ws = self._connection()
        while True:
            message = parse_frame(await asyncio.wait_for(ws.recv(), self._timeout))
            if not isinstance(message, Other):
                return message

    def _connection(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("the feed is not open")
        return self._ws


class StreamMetrics:
    def __init__(self) -> None:
        self._connections = counter("user_stream_connections_total", "stream connections made")
        self._failures = counter("user_stream_failures_total", "stream connections that failed")
        self._updates = counter(
            "user_stream_updates_total", "trade updates sent to the tracker", ["event"]
        )

    def on_connection(self) -> None:
        self._connections.inc(1)

    def on_failure(self) -> None:
        self._failures.inc(1)

    def on_update(self, event: str) -> None:
        self._updates.inc(1, tags={"event": event})


class UserStream:
    """`tracker` is the OrderTracker's handle (`on_update`, `reconcile`)."""

    def __init__(
        self,
        tracker: Any,
        clock: ClockLink,
        access: AlpacaAccess,
        *,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        self._tracker = tracker
        self._clock = clock
        self._access = access
        self._base_s = backoff_base_s
        self._cap_s = backoff_cap_s
        self._open_timeout = open_timeout_s
        self._stopping = asyncio.Event()
        self._running = False
        self._feed: TradeUpdateFeed | None = None
        self._figures = {"connections": 0, "updates": 0, "reconciles": 0, "failures": 0}
        self._last_error: str | None = None
        self._metrics = StreamMetrics()

    async def run(self) -> int:
        """Listen until `stop()`; returns how many connections were made. A second call
        while running returns 0 at once."""
        if self._running:
            return 0
        self._running = True
        failures = 0
        try:
            while not self._stopping.is_set():
                listened = await self._session()
                if self._stopping.is_set():
                    break
                failures = 1 if listened else failures + 1
                await sleep_unless_stopped(
                    self._clock, backoff_delay(failures, self._base_s, self._cap_s), self._stopping
                )
        finally:
            self._running = False
        return self._figures["connections"]

    async def stop(self) -> None:
        self._stopping.set()
        if self._feed is not None:
            await self._feed.close()

    async def status(self) -> dict[str, Any]:
        return {
            "running": self._running,
            "connected": self._feed is not None,
            **self._figures,
            "last_error": self._last_error,
        }

    async def _session(self) -> bool:
        """One connection's life; whether it got as far as listening."""
        feed = TradeUpdateFeed(
            self._access.endpoints.stream_url,
            self._access.key_id,
            self._access.secret_key,
            open_timeout_s=self._open_timeout,
        )
        try:
            await feed.open()
        except CONNECTION_FAILURES as exc:
            await self._failed(feed, exc)
            return False
        self._feed = feed
        self._figures["connections"] += 1
        self._metrics.on_connection()
        try:
            await self._reconcile()
            while True:
                await self._forward(await feed.next_update())
        except CONNECTION_FAILURES as exc:
            await self._failed(feed, exc)
        finally:
            self._feed = None
        return True

    async def _forward(self, update: TradeUpdate) -> None:
        try:
            await self._tracker.on_update.remote(update.order)
        except Exception as exc:  # the tracker restarting: the next reconciliation covers it
            log.warning("tracker did not take %s %s: %r", update.event, update.order, exc)
            return
        self._figures["updates"] += 1
        self._metrics.on_update(update.event)

    async def _reconcile(self) -> None:
        try:
            await self._tracker.reconcile.remote()
            self._figures["reconciles"] += 1
        except Exception as exc:  # the next tick reconciles again
            log.warning("reconciliation after connecting failed: %r", exc)

    async def _failed(self, feed: TradeUpdateFeed, exc: BaseException) -> None:
        if not self._stopping.is_set():
            self._figures["failures"] += 1
            self._metrics.on_failure()
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning("alpaca trade_updates stream: %s", self._last_error)
        with contextlib.suppress(*CONNECTION_FAILURES):
            await feed.close()
