"""The replay `make run` performs: the bundled alerts, at their bars' closes, over real HTTP.

Simulated time moves minute by minute over the scenario's timeline, and only when the
pipeline is idle (no signal waiting for a decision or an order, no order waiting for a
fill); while everything is flat and idle it goes straight to the next alert's minute. At
each minute the driver posts the alerts due then (a bar's close: when TradingView would
send it) to the real webhook, waits for the pipeline to settle, then ticks the position
monitor. Every step depends only on simulated time, so two replays give identical orders
and fills.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from engine.alert_rules import alert_due_at
from engine.errors import Fatal

# Work in flight in Engine 1: a signal waiting for its decision, an approved signal
# without its own order yet, an order not yet answered by the broker.
_BUSY = (
    "(SELECT count(*) FROM signals WHERE status = 'received')",
    "(SELECT count(*) FROM signals s WHERE s.status = 'approved' AND NOT EXISTS "
    "(SELECT 1 FROM orders o WHERE o.signal_id = s.signal_id AND o.intent = s.action))",
    "(SELECT count(*) FROM orders "
    "WHERE status IN ('pending_execution', 'submitted', 'partially_filled'))",
)
_OPEN = ("(SELECT count(*) FROM positions WHERE status = 'open')",)
# With Engine 2: also busy while a decided signal has no experiment record yet (the
# router writes it last, once the shadow path is done); open shadow positions count too.
_BUSY_ROUTED = (
    "(SELECT count(*) FROM signals s WHERE s.status <> 'received' AND NOT EXISTS "
    "(SELECT 1 FROM experiments e WHERE e.signal_id = s.signal_id))",
)
_OPEN_SHADOW = ("(SELECT count(*) FROM shadow_positions WHERE status = 'open')",)


def _idle_sql(busy: tuple[str, ...], open_positions: tuple[str, ...]) -> str:
    return f"SELECT {' + '.join(busy)} AS busy, {' + '.join(open_positions)} AS open_positions"


IDLE_SQL = _idle_sql(_BUSY, _OPEN)
IDLE_SQL_ROUTED = _idle_sql(_BUSY + _BUSY_ROUTED, _OPEN + _OPEN_SHADOW)
IDLE_TIMEOUT_S = 60.0


@dataclass
class ReplayReport:
    minutes: int = 0
    posted: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def load_alerts(path: Path) -> list[tuple[datetime, dict[str, Any]]]:
    """(due time, alert) pairs from a bundled alerts file, in due order."""
    if not path.exists():
        raise Fatal(f"no bundled alerts at {path}", "see data/alerts/README.md")
    alerts = json.loads(path.read_text())
    return sorted(((alert_due_at(a), a) for a in alerts), key=lambda p: p[0])


class ReplayDriver:
    def __init__(
        self,
        base_url: str,
        secret: str,
        store: Any,
        clock: Any,
        monitors: Any = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
        routed: bool = False,
        sources: Any = None,
    ) -> None:
        self._stop = stop
        self._base_url = base_url
        self._secret = secret
        self._store = store
        self._clock = clock
        # what marks and exits positions at each minute: Engine 1's monitor, the shadow one
        self._monitors = [] if monitors is None else list(monitors)
        self._idle_sql = IDLE_SQL_ROUTED if routed else IDLE_SQL
        # what else sends alerts: strategy runners, ticked at each minute before it settles
        self._sources = [] if sources is None else list(sources)
        self._progress = progress

    async def run(
        self, timeline: list[datetime], alerts: list[tuple[datetime, dict[str, Any]]]
    ) -> ReplayReport:
        report = ReplayReport()
        started = time.monotonic()
        pending = list(alerts)
        async with httpx.AsyncClient(base_url=self._base_url, timeout=30) as http:
            i = 0
            while i < len(timeline) and not self._stop():
                minute = timeline[i]
                await self._clock.advance_to.remote(minute)
                due = [a for t, a in pending if t <= minute]
                pending = [(t, a) for t, a in pending if t > minute]
                for alert in due:
                    response = await http.post("/webhook", json={**alert, "secret": self._secret})
                    report.statuses[response.status_code] = (
                        report.statuses.get(response.status_code, 0) + 1
                    )
                    report.posted += 1
                for source in self._sources:  # a strategy posts its own alerts, over HTTP
                    sent = int(await source.tick.remote(minute))
                    report.posted += sent
                    report.statuses[201] = report.statuses.get(201, 0) + sent
                limit = timeline[i + 1] if i + 1 < len(timeline) else None
                open_positions = await self._settle(limit)
                if self._monitors and open_positions:  # nothing to mark when flat
                    ticks = asyncio.gather(*(m.tick.remote(minute) for m in self._monitors))
                    await self._drive(ticks, limit)
                    open_positions = await self._settle(limit)
                i = self._next_minute(timeline, i, open_positions, pending)
                report.minutes = i
                if self._progress is not None:
                    self._progress(i, len(timeline))
        report.seconds = time.monotonic() - started
        return report

    def _next_minute(
        self,
        timeline: list[datetime],
        i: int,
        open_positions: int,
        pending: list[tuple[datetime, dict[str, Any]]],
    ) -> int:
        """The index of the next minute where something can happen. Flat, idle and with no
        strategy to ask, nothing does until the next alert is due: the minutes between
        are skipped (a backtest skips the same ones, `engine.backtest`)."""
        if self._sources or open_positions:
            return i + 1
        if not pending:
            return len(timeline)
        return max(i + 1, bisect.bisect_left(timeline, pending[0][0]))

    async def _drive(self, work: Any, limit: datetime | None) -> None:
        """Await `work` (the monitors' ticks) while moving simulated time to the wake-up of
        whoever sleeps on the clock, up to `limit`: the shadow executor fills a rule exit
        inside its tick, and a share fill waits for its bar to close."""
        task = asyncio.ensure_future(work)
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=0.005)
            if done:
                break
            if time.monotonic() > deadline:
                task.cancel()
                raise Fatal("the position monitors did not finish a tick within 60 s")
            await wake_sleeper(self._clock, limit)
        await task

    async def _settle(self, limit: datetime | None) -> int:
        """Wait until nothing is in flight in the pipeline; return the open positions."""
        open_positions = await wait_idle(
            self._store, IDLE_TIMEOUT_S, self._clock, limit, self._idle_sql
        )
        if open_positions is None:
            raise Fatal("the pipeline did not settle within 60 s during the replay")
        return open_positions


async def wake_sleeper(clock: Any, limit: datetime | None) -> bool:
    """Move the simulated clock to the earliest wake-up of whoever sleeps on it, unless
    that is past `limit` (the replay's next minute); True if time moved."""
    wake = await clock.next_deadline.remote()
    if wake is None or (limit is not None and wake > limit):
        return False
    await clock.advance_to.remote(wake)
    return True


async def wait_idle(
    store: Any,
    timeout_s: float,
    clock: Any = None,
    limit: datetime | None = None,
    sql: str | None = None,
) -> int | None:
    """Wait until no signal or order is in flight; the open positions, or None on timeout.

    With the simulated `clock`: while work is in flight and someone sleeps on the clock (a
    fill retried after 1 s, a paper share order waiting for its bar to close), simulated
    time moves to that wake-up, but never past `limit` (the replay's next minute).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        table = await store.query.remote(sql or IDLE_SQL, [])
        if table.column("busy")[0].as_py() == 0:
            return int(table.column("open_positions")[0].as_py())
        if time.monotonic() > deadline:
            return None
        if clock is not None and await wake_sleeper(clock, limit):
            continue
        await asyncio.sleep(0.005)


SUMMARY_QUERIES: dict[str, str] = {
    "signals": "SELECT count(*) FROM signals",
    "approved": "SELECT count(*) FROM refactored_signals WHERE decision = 'approved'",
    "orders": "SELECT count(*) FROM orders",
    "filled": "SELECT count(*) FROM orders WHERE status = 'filled'",
    "failed": "SELECT count(*) FROM orders WHERE status = 'failed'",
    "open positions": "SELECT count(*) FROM positions WHERE status = 'open'",
    "closed positions": "SELECT count(*) FROM positions WHERE status = 'closed'",
    "realised P&L": "SELECT coalesce(round(sum(realised_pnl), 2), 0) FROM positions",
    "unrealised P&L": (
        "SELECT coalesce(round(sum(unrealised_pnl), 2), 0) FROM positions WHERE status = 'open'"
    ),
}
REJECTIONS_SQL = (
    "SELECT reason, count(*) AS n FROM refactored_signals WHERE decision = 'rejected' "
    "GROUP BY reason ORDER BY n DESC, reason"
)


async def summary(store: Any) -> tuple[dict[str, Any], dict[str, int]]:
    figures = {}
    for name, sql in SUMMARY_QUERIES.items():
        table = await store.query.remote(sql, [])
        figures[name] = table.column(0)[0].as_py()
    rejected = (await store.query.remote(REJECTIONS_SQL, [])).to_pylist()
    return figures, {str(r["reason"]): int(r["n"]) for r in rejected}


AB_QUERIES: dict[str, str] = {
    "A signals": "SELECT count(*) FROM experiments WHERE experiment_id = ? AND variant = 'A'",
    "B signals": "SELECT count(*) FROM experiments WHERE experiment_id = ? AND variant = 'B'",
    "B shadow trades": "SELECT count(*) FROM shadow_trades WHERE experiment_id = ?",
    "B closed shadow positions": (
        "SELECT count(*) FROM shadow_positions WHERE experiment_id = ? AND status = 'closed'"
    ),
    "B realised P&L (shadow)": (
        "SELECT coalesce(round(sum(realised_pnl), 2), 0) FROM shadow_positions "
        "WHERE experiment_id = ?"
    ),
    "A realised P&L on B's signals (paired)": (
        "SELECT coalesce(round(sum(p.realised_pnl), 2), 0) FROM positions p "
        "JOIN orders o ON p.entry_order_id = o.order_id JOIN experiments e "
        "ON e.signal_id = o.signal_id WHERE e.experiment_id = ? AND e.variant = 'B'"
    ),
}


async def ab_summary(store: Any, experiment_id: str) -> dict[str, Any]:
    """A against B in the replay: assignments, shadow trades and P&L, and the paired P&L."""
    out = {}
    for name, sql in AB_QUERIES.items():
        table = await store.query.remote(sql, [experiment_id])
        out[name] = table.column(0)[0].as_py()
    return out
