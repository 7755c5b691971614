"""Engine 1 and the shadow engine in one process, on a `SimClock`, over replayed bars.

A backtest shard runs here: no actors, no Store, no HTTP. It makes the same decisions
the live workers make, by calling the same functions in the same order:

| live (actors/)                                  | here                                   |
|-------------------------------------------------|----------------------------------------|
| webhook: `alert_from_fields`, Store dedupe       | `Backtest.on_alert`: same parse, same  |
|                                                 | dedupe rule (key within the window)    |
| SignalProcessor `_decide`                       | `_decide`: `check_entry`, protections  |
|                                                 | (`ProtectionManager`), the quote check |
| OrderCreator `plan_signal_entry` / `plan_exit`  | the same functions                     |
| OrderTracker + PaperBroker (`PaperFills`)       | `_submit`: `PaperFills.fill`, then     |
|                                                 | `open_position` / `apply_fill`         |
| PositionMonitor `tick` (`exit_reason`)          | `_tick` (`exits_due`' rule), or, for   |
|                                                 | shares, `exit_codes` over the minutes  |
|                                                 | between two alerts                     |
| Router → agents → `decide` → ShadowExecutor     | `_route` (variant B)                   |

The replay driver (api/replay_driver.py) moves simulated time minute by minute; at each
minute it posts the alerts due, waits for the pipeline to settle, then ticks the monitor.
`run` visits the same minutes in the same order: the alerts of a minute, then the tick
of that minute. Minutes with no alert and no open position change nothing and are skipped;
while only share positions are open, the ticks between two alerts are one vectorised scan
(`exit_codes`) whose first firing minute is the tick the monitor would have exited at.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from engine.adapters.replay_store import from_us, to_us
from engine.agents.base import Agent
from engine.alerts import Alert, alert_from_fields
from engine.calendar import MarketCalendar, session_close_at, xnys_calendar
from engine.clock import SimClock
from engine.enrichment import Portfolio, build_enrichment
from engine.errors import Rejected, Retryable
from engine.exits import NO_EXIT, ExitRules, exit_codes, exit_reason
from engine.fills import Fill
from engine.intake import signal_row
from engine.marketdata import MarketDataPort, OptionQuote
from engine.meta import MetaConfig, cast_vote, decide
from engine.orders import PlanConfig, PlannedOrder, plan_exit, plan_signal_order
from engine.paper_broker import PaperFills
from engine.positions import (
    ClosedTrade,
    Position,
    apply_fill,
    closed_trade,
    mark,
    open_position,
)
from engine.protection_manager import ProtectionManager
from engine.protections import Lock, Protection, history_minutes
from engine.risk import RiskLimits, check_entry
from engine.router import Unit, assign
from engine.symbols import SymbolTable

Variant = Literal["A", "B"]
LIVE = "live"
SHADOW = "shadow"


class Market(MarketDataPort, Protocol):
    """What a backtest reads: the market data port, and the last price of many minutes at
    once for the exit scan (`engine.adapters.replay.ReplayMarketData` has both)."""

    def last_prices(
        self, symbol: str, as_of_us: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]: ...


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """The settings a shard trades with (the live ones: `api.backtest.backtest_config`)."""

    plan: PlanConfig
    limits: RiskLimits
    exit_rules: ExitRules
    protections: tuple[Protection, ...] = ()
    slippage_ticks: int = 1
    dedupe_window_s: float = 60.0
    variant: Variant = "A"
    meta: MetaConfig = field(default_factory=MetaConfig)
    agents: tuple[Agent, ...] = ()
    agent_flags: Mapping[str, bool] = field(default_factory=dict)
    first_session: date | None = None
    # variant B: the share of signals the router sends to B, and its unit (engine.router)
    split_pct: float = 100.0
    experiment_id: str = "backtest"
    unit: Unit = "signal"


@dataclass(slots=True)
class OrderRecord:
    order: PlannedOrder
    signal_id: int | None
    status: str = "submitted"
    refusal: str | None = None


@dataclass(slots=True)
class Held:
    """An open position, its row id, and how many of its exits failed."""

    position_id: int
    position: Position
    failed_exits: int = 0


@dataclass(slots=True)
class ClosedRow:
    """A closed position: as it stood before its exit fill, and the `ClosedTrade` record
    the protections read (built once, by `closed_trade`, from the exit fill)."""

    position_id: int
    position: Position
    trade: ClosedTrade
    exit_price: float

    @property
    def closed_at(self) -> datetime:
        return self.trade.closed_at

    @property
    def realised_pnl(self) -> float:
        return self.trade.realised_pnl

    @property
    def exit_reason(self) -> str:
        return self.trade.exit_reason


@dataclass
class BacktestResult:
    """What a shard did, in the shapes the live tables hold."""

    signals: list[dict[str, Any]] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[tuple[OrderRecord, Fill]] = field(default_factory=list)
    closed: list[ClosedRow] = field(default_factory=list)
    open: list[Held] = field(default_factory=list)
    equity: list[tuple[datetime, float]] = field(default_factory=list)
    bars: int = 0


class Backtest:
    """One shard: the alerts of one source over one symbol's minutes, variant A or B."""

    def __init__(
        self,
        market: Market,
        symbols: SymbolTable,
        config: BacktestConfig,
        start: datetime,
        calendar: MarketCalendar | None = None,
        *,
        scan: bool = True,
    ) -> None:
        """`scan` False ticks share positions minute by minute too (the reference the
        vectorised scan is tested against)."""
        self._md = market
        self._scan_shares = scan
        self._symbols = symbols
        self._config = config
        self._calendar = calendar or xnys_calendar()
        self.clock = SimClock(start)
        self._fills = PaperFills(
            market,
            self._now,
            self.clock.sleep,
            symbols,
            slippage_ticks=config.slippage_ticks,
            calendar=self._calendar,
        )
        self._engine = LIVE if config.variant == "A" else SHADOW
        self._manager = ProtectionManager(config.protections, [])
        self._history = timedelta(minutes=history_minutes(config.protections))
        self._held: list[Held] = []
        self._keys: dict[str, OrderRecord] = {}
        self._recent: dict[str, datetime] = {}
        self._signals = 0
        self._positions = 0
        self.result = BacktestResult()

    async def _now(self) -> datetime:
        return self.clock.now()

    # --- the driver ------------------------------------------------------------------

    async def run(
        self,
        timeline: Sequence[datetime] | npt.NDArray[np.int64],
        alerts: Sequence[tuple[datetime, Mapping[str, Any]]],
    ) -> BacktestResult:
        """Replay `alerts` (due time, TradingView fields; in due order) over `timeline`
        (the minutes the replay driver visits, as datetimes or epoch microseconds)."""
        if isinstance(timeline, np.ndarray):
            minutes = timeline.astype(np.int64)
        else:
            minutes = np.array([to_us(t) for t in timeline], dtype=np.int64)
        pending = sorted(((to_us(t), i) for i, (t, _a) in enumerate(alerts)))
        due_minutes = np.array([p[0] for p in pending], dtype=np.int64)
        # each alert at the first visited minute at or after it is due
        slots = np.searchsorted(minutes, due_minutes, side="left")
        self._to_close = self._minutes_to_close(minutes) if minutes.size else np.empty(0)
        self._prices: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]] = {}
        k = 0
        i = 0
        n = len(minutes)
        while i < n:
            minute = from_us(int(minutes[i]))
            self._advance(minute)
            while k < len(pending) and slots[k] == i:
                await self.on_alert(alerts[pending[k][1]][1], minute)
                k += 1
            next_alert = int(slots[k]) if k < len(pending) else n
            if not self._held:
                i = max(i + 1, next_alert)
                continue
            i = await self._ticks(minutes, i, next_alert)
        self.result.open = list(self._held)
        self.result.bars = n
        return self.result

    def _advance(self, minute: datetime) -> None:
        if minute > self.clock.now():
            self.clock.advance_to(minute)

    async def _ticks(self, minutes: npt.NDArray[np.int64], i: int, stop: int) -> int:
        """Ticks at minutes[i:stop] while positions are open; the index to go on from."""
        shares_only = all(h.position.contract is None for h in self._held)
        if self._scan_shares and shares_only and stop - i > 1:
            hit = self._scan(minutes, i, stop)
            if hit is None:
                return stop
            i = hit
            self._advance(from_us(int(minutes[i])))
        await self._tick(from_us(int(minutes[i])))
        return i + 1

    def _scan(self, minutes: npt.NDArray[np.int64], i: int, stop: int) -> int | None:
        """The first of minutes[i:stop] at which an exit rule closes a share position."""
        window = minutes[i:stop]
        first: int | None = None
        rules = self._config.exit_rules
        to_close = self._to_close[i:stop]
        for held in self._held:
            p = held.position
            if p.symbol not in self._prices:  # every minute's last price, once per symbol
                self._prices[p.symbol] = self._md.last_prices(p.symbol, minutes)
            all_prices, all_ok = self._prices[p.symbol]
            prices, ok = all_prices[i:stop], all_ok[i:stop]
            if not bool(ok.all()):
                return i  # a minute without its own bar: tick one by one, as live does
            diff = (prices - p.avg_price) * p.sign
            ratio = diff / p.avg_price if p.avg_price > 0 else np.zeros_like(diff)
            held_min = (window - to_us(p.opened_at)) / 60e6
            codes = exit_codes(ratio, math.nan, to_close, held_min, rules)
            fired = np.flatnonzero(codes != NO_EXIT)
            if fired.size and (first is None or int(fired[0]) < first):
                first = int(fired[0])
        return None if first is None else i + first

    def _minutes_to_close(self, minutes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Minutes from each minute to its session's close; NaN outside regular hours (as
        `actors.monitor.session_close_at`: a session is [open, close))."""
        first, last = from_us(int(minutes[0])).date(), from_us(int(minutes[-1])).date()
        sessions = self._calendar.sessions_between(
            first - timedelta(days=1), last + timedelta(days=1)
        )
        opens = np.array([to_us(self._calendar.session_open(d)) for d in sessions], np.int64)
        closes = np.array([to_us(self._calendar.session_close(d)) for d in sessions], np.int64)
        out = np.full(minutes.size, np.nan)
        if not sessions:
            return out
        at = np.searchsorted(opens, minutes, side="right") - 1
        j = np.maximum(at, 0)
        inside = (at >= 0) & (minutes < closes[j])
        out[inside] = (closes[j][inside] - minutes[inside]) / 60e6
        return out

    # --- signals -----------------------------------------------------------------------

    async def on_alert(self, fields: Mapping[str, Any], at: datetime) -> str:
        """One alert received at `at`: what became of it."""
        try:
            alert = alert_from_fields(fields).alert
        except Rejected as exc:
            return f"invalid:{exc.code}"
        key = alert.dedupe_key
        seen = self._recent.get(key)
        if seen is not None and seen >= at - timedelta(seconds=self._config.dedupe_window_s):
            return "duplicate"
        self._recent[key] = at
        self._signals += 1
        signal = _signal_row(self._signals, alert, at)
        self.result.signals.append(signal)
        if self._config.variant == "B":
            return await self._route(signal)
        approved, reason = await self._decide(signal)
        signal["status"] = "approved" if approved else "rejected"
        signal["reason"] = reason
        if approved:
            await self._create(signal, reason)
        return signal["status"] if approved else f"rejected:{reason}"

    async def _decide(self, signal: dict[str, Any]) -> tuple[bool, str | None]:
        """`actors.pipeline.SignalProcessor._decide`, over this shard's book."""
        mine = [h.position for h in self._held if h.position.symbol == signal["symbol"]]
        if signal["action"] == "exit":
            return (True, "exit") if mine else (False, "no_open_position")
        opposite = [p for p in mine if p.direction != signal["direction"]]
        if opposite and self._config.plan.opposite_entry != "reverse":
            return False, "opposite_position_open"
        positions = [h.position for h in self._held if h.position not in opposite]
        at: datetime = signal["received_at"]
        try:
            await self._md.quote(signal["symbol"], at)
        except Rejected as exc:
            return False, f"market_data:{exc.code}"
        except Retryable:
            return False, "market_data:unavailable"
        limits = self._config.limits
        decision = check_entry(
            signal["symbol"],
            positions,
            limits,
            market_open=self._calendar.is_open(at),
            lock=self._lock_for(signal["symbol"], at),
            capital_needed=limits.capital_available * limits.per_trade_risk_pct,
        )
        if decision.approved and opposite:
            return True, "reverse"
        return decision.approved, decision.reason

    def _lock_for(self, symbol: str, at: datetime) -> Lock | None:
        """`actors.protection_locks.ProtectionLocks.lock_for` over this shard's closed
        positions (closed in time order here, as the live query orders them)."""
        if not self._config.protections:
            return None
        since = at - self._history
        closed = self.result.closed
        first = bisect.bisect_right(closed, since, key=lambda c: c.closed_at)
        trades = [c.trade for c in closed[first:]]
        self._manager.refresh(trades, at, {t.symbol for t in trades})
        return self._manager.check(trades, at, symbol)

    async def _create(self, signal: dict[str, Any], reason: str | None) -> None:
        """`actors.pipeline.OrderCreator.create` for a fresh approved signal."""
        at: datetime = signal["received_at"]
        sid = int(signal["signal_id"])
        if signal["action"] == "exit":
            held = next(h for h in self._held if h.position.symbol == signal["symbol"])
            order = plan_exit(held.position, at, "exit_signal")
            if order.idempotency_key in self._keys:  # an exit of it exists: that is its order
                return
            await self._submit(self._insert(order, sid), held)
            return
        if reason == "reverse" and not await self._reverse_first(signal):
            return
        try:
            order = await self._plan_entry(signal, at, self._engine)
        except Rejected as exc:
            signal["status"] = "order_refused"
            signal["reason"] = exc.code
            return
        await self._submit(self._insert(order, sid), None, signal.get("strategy"))

    async def _reverse_first(self, signal: dict[str, Any]) -> bool:
        at: datetime = signal["received_at"]
        for held in [
            h
            for h in self._held
            if h.position.symbol == signal["symbol"] and h.position.direction != signal["direction"]
        ]:
            order = plan_exit(held.position, at, "reversal")
            record = self._keys.get(order.idempotency_key)
            if record is None:
                record = self._insert(order, int(signal["signal_id"]))
                await self._submit(record, held)
            if record.status != "filled":
                return False
        return True

    async def _plan_entry(self, signal: dict[str, Any], at: datetime, engine: str) -> PlannedOrder:
        """`actors.pipeline.plan_signal_entry`, on this shard's market and limits."""
        symbol = signal["symbol"]
        spot = (await self._md.quote(symbol, at)).last
        chain: list[OptionQuote] = []
        if self._config.plan.instrument_mode == "option":
            chain = await self._md.option_chain(symbol, None, at)
        return plan_signal_order(
            signal, spot, chain, self._config.limits, self._symbols, self._config.plan, at, engine
        )

    def _insert(self, order: PlannedOrder, signal_id: int | None) -> OrderRecord:
        record = OrderRecord(order, signal_id)
        self._keys[order.idempotency_key] = record
        self.result.orders.append(record)
        return record

    async def _submit(
        self, record: OrderRecord, held: Held | None, strategy: str | None = None
    ) -> None:
        """`actors.tracker.OrderTracker.submit` with the paper broker: fill, then book."""
        if held is not None and held not in self._held:
            record.status, record.refusal = "rejected", "no_open_position"
            return
        try:
            fill = await self._fill(record.order)
        except Rejected as exc:
            record.status, record.refusal = "rejected", exc.code
        except Retryable as exc:
            record.status, record.refusal = "failed", exc.message
        else:
            record.status = "filled"
            self._book(record, fill, held, strategy)
            return
        if held is not None:
            held.failed_exits += 1

    async def _fill(self, order: PlannedOrder) -> Fill:
        """`PaperFills.fill`, its waits on the shard's clock run through at once."""
        return await _run_on(self.clock, self._fills.fill(order))

    def _book(
        self, record: OrderRecord, fill: Fill, held: Held | None, strategy: str | None
    ) -> None:
        self.result.fills.append((record, fill))
        if held is None:
            self._positions += 1
            self._held.append(Held(self._positions, open_position(fill, strategy)))
            return
        rest, realised = apply_fill(held.position, fill)
        if rest is not None:
            held.position = rest
            return
        self._held.remove(held)
        reason = record.order.reason or "exit"
        trade = closed_trade(held.position, fill, realised, reason)
        row = ClosedRow(held.position_id, held.position, trade, fill.price)
        # kept in (closed_at, position_id) order, the order the live protections read
        bisect.insort(self.result.closed, row, key=lambda c: (c.closed_at, c.position_id))

    # --- the monitor --------------------------------------------------------------------

    async def _tick(self, now: datetime) -> None:
        """`actors.monitor.PositionMonitor.tick` (variant A) or the shadow executor's."""
        rules = self._config.exit_rules
        close = session_close_at(self._calendar, now)
        for held in list(self._held):
            try:
                price = await self._mark_price(held.position, now)
                marked = mark(held.position, price, now)
            except (Rejected, Retryable):
                continue
            reason = exit_reason(marked, now, held.position.expiry, close, rules)
            if reason is None:
                continue
            if self._config.variant == "A":  # the monitor: attempt n after n failed exits
                order = plan_exit(
                    held.position,
                    now,
                    reason,
                    reference_price=marked.mark,
                    attempt=held.failed_exits,
                )
                if order.idempotency_key in self._keys:
                    continue
            else:  # the shadow executor closes by the same key again after a failure
                order = plan_exit(held.position, now, reason)
            await self._submit(self._insert(order, None), held)

    async def _mark_price(self, position: Position, at: datetime) -> float:
        contract = position.contract
        if contract is not None:
            return float((await self._md.option_quote(contract, at)).mid)
        return float((await self._md.quote(position.symbol, at)).last)

    # --- variant B: the shadow path ---------------------------------------------------------

    async def _route(self, signal: dict[str, Any]) -> str:
        """`actors.engine_two.StrategyRouter._route` for a signal assigned to B."""
        at: datetime = signal["received_at"]
        if signal["action"] == "entry" and self._config.split_pct < 100:
            assignment = assign(
                experiment_id=self._config.experiment_id,
                signal_id=int(signal["signal_id"]),
                symbol=signal["symbol"],
                timeframe=signal["timeframe"],
                session=self._calendar.session_date(at),
                split_pct=self._config.split_pct,
                master_on=True,
                unit=self._config.unit,
            )
            if assignment.variant == "A":
                signal["status"] = "variant_a"
                return "A"
        if signal["action"] == "exit":
            for held in [
                h
                for h in self._held
                if h.position.symbol == signal["symbol"]
                and h.position.strategy == signal["strategy"]
            ]:
                # the shadow executor closes by the position's exit key whatever failed
                # before (`ShadowExecutor.exit_signal`): no check of earlier attempts
                order = plan_exit(held.position, at, "exit_signal")
                await self._submit(self._insert(order, int(signal["signal_id"])), held)
            signal["status"] = "routed"
            return "exit"
        limits = self._config.limits
        portfolio = Portfolio(
            open_positions=tuple(h.position for h in self._held),
            limits=limits,
            capital_needed=limits.capital_available * limits.per_trade_risk_pct,
        )
        try:
            enrichment = await build_enrichment(
                self._md,
                self._calendar,
                signal_id=int(signal["signal_id"]),
                symbol=signal["symbol"],
                direction=signal["direction"],
                timeframe=signal["timeframe"],
                as_of=at,
                portfolio=portfolio,
                first_session=self._config.first_session,
            )
        except Rejected as exc:
            signal["status"], signal["reason"] = "enrichment_failed", exc.code
            return "enrichment_failed"
        flags = dict(self._config.agent_flags)
        votes = [cast_vote(a, enrichment, flags) for a in self._config.agents]
        decisions = [v for v in votes if v is not None]
        meta = decide(int(signal["signal_id"]), signal["direction"], decisions, self._config.meta)
        signal["status"] = "trade" if meta.trade else "no_trade"
        signal["reason"] = str(meta.reason)
        if not meta.trade:
            return "no_trade"
        try:
            order = await self._plan_entry(signal, at, SHADOW)
        except (Rejected, Retryable) as exc:  # as `ShadowExecutor.open`: not taken
            signal["reason"] = exc.code if isinstance(exc, Rejected) else "unavailable"
            return "refused"
        record = self._insert(order, int(signal["signal_id"]))
        await self._submit(record, None, signal.get("strategy"))
        return "trade"

    # --- equity -----------------------------------------------------------------------------

    async def equity_curve(
        self, start: datetime, closes: Sequence[datetime]
    ) -> list[tuple[datetime, float]]:
        """After `run`: the shard's P&L (realised + open positions at their mark) at `start`
        (0) and at each session close (ascending)."""
        closed = self.result.closed  # in closing order
        done_at = [c.closed_at for c in closed]
        realised = np.cumsum([0.0, *(c.realised_pnl for c in closed)])
        spans: list[tuple[datetime, datetime | None, Position]] = [
            (c.position.opened_at, c.closed_at, c.position) for c in closed
        ]
        spans += [(h.position.opened_at, None, h.position) for h in self._held]
        spans.sort(key=lambda s: s[0])
        curve = [(start, 0.0)]
        first = 0  # spans before this one closed before the previous close
        for ts in closes:
            while first < len(spans) and (end := spans[first][1]) is not None and end <= ts:
                first += 1
            unrealised = 0.0
            for opened, end, position in spans[first:]:
                if opened > ts:
                    break
                if end is None or ts < end:
                    unrealised += await self._unrealised(position, ts)
            n = bisect.bisect_right(done_at, ts)
            curve.append((ts, float(realised[n]) + unrealised))
        return curve

    async def unrealised(self, at: datetime) -> dict[int, float]:
        """After `run`: each still-open position's unrealised P&L at `at`, by position id."""
        return {h.position_id: await self._unrealised(h.position, at) for h in self._held}

    async def _unrealised(self, position: Position, at: datetime) -> float:
        try:
            price = await self._mark_price(position, at)
        except (Rejected, Retryable):
            return 0.0  # no mark: carried at cost
        return mark(position, price, at).unrealised_pnl


def _signal_row(signal_id: int, alert: Alert, at: datetime) -> dict[str, Any]:
    """The `signals` row the webhook writes (`engine.intake.signal_row`), with its id."""
    return {
        "signal_id": signal_id,
        **signal_row(alert),
        "received_at": at,
        "reason": None,
    }


async def _run_on(clock: SimClock, work: Coroutine[Any, Any, Fill]) -> Fill:
    """Run `work` to its end, moving `clock` to each deadline it sleeps until.

    Nothing else runs in a shard, so the coroutine is stepped here directly: each time it
    waits (a `SimClock.sleep` future) the clock moves to the earliest deadline, which
    wakes it. No event-loop round trip per fill.
    """
    try:
        while True:
            waiting = work.send(None)
            due = clock.next_deadline()
            if due is None:
                raise RuntimeError(f"a fill waits on {waiting!r}, not on the shard's clock")
            clock.advance_to(due)
    except StopIteration as done:
        result: Fill = done.value
        return result
